"""CUDA checks (``pytest -m gpu``; skipped without a GPU): attention backends agree in fp32,
bf16 and fp16; pre-training runs under fp16 autocast with a grad scaler; decoding on the GPU
equals decoding on the CPU."""

from __future__ import annotations

import copy

import pytest
import torch
from zoo_transformer.pretrain import TrainConfig, pretrain

import zoo_core as zoo
from zoo_core import REGISTRY

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TOL = {torch.float32: 2e-5, torch.bfloat16: 3e-2, torch.float16: 5e-3}


@pytest.mark.parametrize("dtype", list(TOL))
def test_backends_agree_on_gpu(dtype):
    torch.manual_seed(0)
    ref = zoo.create("model:bert", preset="tiny", hidden_size=128, num_heads=4,
                     intermediate_size=256, attn_backend="eager").cuda().to(dtype).eval()
    inputs = {k: v.cuda() for k, v in ref.example_inputs().items()}
    with torch.no_grad():
        want = ref(**inputs).last_hidden_state.float()
    backends = ["sdpa"] + (["zoo"] if "kernel:attention" in REGISTRY.components() else [])
    for backend in backends:
        model = copy.deepcopy(ref)
        for layer in model.layers:
            layer.attn.backend = backend
        with torch.no_grad():
            got = model(**inputs).last_hidden_state.float()
        torch.testing.assert_close(got, want, rtol=TOL[dtype], atol=TOL[dtype],
                                   msg=f"{backend} vs eager in {dtype}")


def _batches(i: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(i)
    ids = torch.randint(10, 200, (8, 32), generator=g)
    labels = torch.where(torch.rand(ids.shape, generator=g) < 0.15, ids, -100)
    return {"input_ids": ids.masked_fill(labels.ne(-100), 4),
            "attention_mask": torch.ones_like(ids), "labels": labels}


def test_pretrain_fp16_autocast_with_grad_scaler():
    torch.manual_seed(0)
    model = zoo.create("model:bert-mlm", preset="tiny", vocab_size=200).cuda()
    before = model.bert.layers[0].attn.qkv.weight.detach().clone()
    history = pretrain(model, _batches, TrainConfig(steps=20, lr=3e-3, warmup=2, nsp=False,
                                                    amp=True))
    assert all(torch.isfinite(torch.tensor(history)))
    assert not torch.equal(before, model.bert.layers[0].attn.qkv.weight)
    assert sum(history[-5:]) < sum(history[:5])


def test_generate_on_gpu_equals_cpu():
    torch.manual_seed(0)
    model = zoo.create("model:transformer", preset="tiny").eval()
    src = model.example_inputs()["src_ids"]
    cpu = [model.generate(src, 8), model.generate(src, 8, beam_size=3)]
    model.cuda()
    gpu = [model.generate(src.cuda(), 8), model.generate(src.cuda(), 8, beam_size=3)]
    for a, b in zip(cpu, gpu, strict=True):
        assert torch.equal(a, b.cpu())
