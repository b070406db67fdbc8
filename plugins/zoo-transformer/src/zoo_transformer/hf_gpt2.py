"""``transformers`` GPT-2 checkpoints: the ``hf-gpt2`` key layout and ``config.json``.

Imports no torch: the plugin's ``zoo_foreign_config`` hook runs it while listing plugins.
``GPT2LMHeadModel`` keys (``transformer.h.0.attn.c_attn.weight`` …) map onto
:class:`~zoo_transformer.gpt2.GPT2`'s; ``c_attn`` already stacks ``W_Q; W_K; W_V`` (as
columns: ``Conv1D`` stores its weight (in, out), so the keys matching :data:`TRANSPOSED` are
transposed by the model). The causal-mask buffers of old checkpoints and the tied
``lm_head.weight`` are dropped.
"""

from __future__ import annotations

import re
from typing import Any

from zoo_core import ConfigError

LAYOUTS: dict[str, list[tuple[str, str]]] = {"hf-gpt2": [
    (r"^transformer\.", ""),
    (r"^h\.(\d+)\.attn\.(bias|masked_bias)$", ""),
    (r"^h\.(\d+)\.attn\.c_attn\.", r"layers.\1.attn.qkv."),
    (r"^h\.(\d+)\.attn\.c_proj\.", r"layers.\1.attn.o."),
    (r"^h\.(\d+)\.mlp\.c_fc\.", r"layers.\1.ffn.fc1."),
    (r"^h\.(\d+)\.mlp\.c_proj\.", r"layers.\1.ffn.fc2."),
    (r"^h\.(\d+)\.(ln_1|ln_2)\.", r"layers.\1.\2."),
    (r"^lm_head\.weight$", ""),  # tied to wte.weight
]}
TRANSPOSED = re.compile(r"\.(attn\.qkv|attn\.o|ffn\.fc1|ffn\.fc2)\.weight$")
_ARCHITECTURES = ("GPT2LMHeadModel", "GPT2Model")


def foreign_config(doc: dict[str, Any]) -> dict[str, Any] | None:
    """``{component, config, layout}`` for a transformers GPT-2 ``config.json``, else None."""
    if doc.get("model_type") != "gpt2":
        return None
    arch = (doc.get("architectures") or ["GPT2LMHeadModel"])[0]
    if arch not in _ARCHITECTURES:
        raise ConfigError(f"architecture {arch!r} of model_type 'gpt2' is not supported; "
                          f"supported: {', '.join(_ARCHITECTURES)}")
    for flag in ("scale_attn_by_inverse_layer_idx", "add_cross_attention"):
        if doc.get(flag):
            raise ConfigError(f"GPT-2 with {flag}={doc[flag]!r} is not supported; only the "
                              "published architecture (set it to false)")
    if not doc.get("scale_attn_weights", True):
        raise ConfigError("GPT-2 with scale_attn_weights=False is not supported; attention "
                          "scores are always scaled by 1/sqrt(head_dim)")
    hidden = doc.get("n_embd", 768)
    config = dict(vocab_size=doc.get("vocab_size", 50257),
                  max_positions=doc.get("n_positions", 1024), hidden_size=hidden,
                  num_layers=doc.get("n_layer", 12), num_heads=doc.get("n_head", 12),
                  intermediate_size=doc.get("n_inner") or 4 * hidden,
                  activation=doc.get("activation_function", "gelu_new"),
                  dropout=doc.get("resid_pdrop", 0.1), embed_dropout=doc.get("embd_pdrop", 0.1),
                  attention_dropout=doc.get("attn_pdrop", 0.1),
                  layer_norm_eps=doc.get("layer_norm_epsilon", 1e-5),
                  initializer_range=doc.get("initializer_range", 0.02),
                  bos_token_id=doc.get("bos_token_id", 50256),
                  eos_token_id=doc.get("eos_token_id", 50256))
    return {"component": "model:gpt2", "config": config, "layout": "hf-gpt2"}
