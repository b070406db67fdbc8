"""Entry module of zoo-flashattn: light, imports no torch."""

from zoo_core import component, hookimpl


@hookimpl
def zoo_components():
    return [
        component(
            "kernel:attention", "zoo_flashattn.attention:Attention",
            summary="exact attention: FlashAttention-2 in Triton (fwd+bwd), SDPA and blockwise "
                    "torch backends; causal, window, softcap, ALiBi, dropout, GQA, varlen",
            tags=["attention", "flash-attention", "triton", "kernel"],
            paper="https://arxiv.org/abs/2307.08691"),
    ]
