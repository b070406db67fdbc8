"""Hugging Face checkpoints of the BERT family: key layouts and ``config.json`` recognition.

Imports no torch: the plugin's ``zoo_foreign_config`` hook runs it while listing plugins.

A layout is an ordered list of ``(regex, replacement)`` rules (``re.sub``) applied to each
foreign key after its base-model prefix (``bert.``, ``roberta.``, ``distilbert.``,
``albert.``) is removed; a key mapped to ``""`` is dropped. Keys of heads a model does not
have (the pooler, the MLM or NSP head of a pre-training checkpoint) are dropped too, as
``transformers`` does; everything else is loaded strictly. The rules name the three
attention projections ``attn.q``/``attn.k``/``attn.v``; :func:`convert` then stacks them into
the fused ``attn.qkv`` the model holds (rows ``W_Q; W_K; W_V``).
"""

from __future__ import annotations

import re
from typing import Any

from zoo_core import ConfigError

_COMMON = [
    (r"\.gamma$", ".weight"), (r"\.beta$", ".bias"),
    (r"^embeddings\.(position_ids|token_type_ids)$", ""),
    (r"^embeddings\.word_embeddings\.", "embeddings.word."),
    (r"^embeddings\.position_embeddings\.", "embeddings.position."),
    (r"^embeddings\.token_type_embeddings\.", "embeddings.token_type."),
    (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
]
_BERT = [
    (r"^encoder\.layer\.(\d+)\.attention\.self\.query\.", r"layers.\1.attn.q."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.key\.", r"layers.\1.attn.k."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.value\.", r"layers.\1.attn.v."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attn.o."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layers.\1.attn_norm."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.ffn.fc1."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.ffn.fc2."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layers.\1.ffn_norm."),
    (r"^cls\.predictions\.transform\.dense\.", "mlm.dense."),
    (r"^cls\.predictions\.transform\.LayerNorm\.", "mlm.norm."),
    (r"^cls\.predictions\.decoder\.weight$", ""),  # tied to embeddings.word.weight
    (r"^cls\.predictions\.decoder\.bias$", "mlm.decoder_bias"),
    (r"^cls\.predictions\.bias$", "mlm.bias"),
    (r"^cls\.seq_relationship\.", "nsp."),
]
_ROBERTA = [
    *_BERT[:8],
    (r"^lm_head\.dense\.", "mlm.dense."),
    (r"^lm_head\.layer_norm\.", "mlm.norm."),
    (r"^lm_head\.decoder\.weight$", ""),
    (r"^lm_head\.decoder\.bias$", "mlm.decoder_bias"),
    (r"^lm_head\.bias$", "mlm.bias"),
]
_DISTILBERT = [
    (r"^transformer\.layer\.(\d+)\.attention\.q_lin\.", r"layers.\1.attn.q."),
    (r"^transformer\.layer\.(\d+)\.attention\.k_lin\.", r"layers.\1.attn.k."),
    (r"^transformer\.layer\.(\d+)\.attention\.v_lin\.", r"layers.\1.attn.v."),
    (r"^transformer\.layer\.(\d+)\.attention\.out_lin\.", r"layers.\1.attn.o."),
    (r"^transformer\.layer\.(\d+)\.sa_layer_norm\.", r"layers.\1.attn_norm."),
    (r"^transformer\.layer\.(\d+)\.ffn\.lin1\.", r"layers.\1.ffn.fc1."),
    (r"^transformer\.layer\.(\d+)\.ffn\.lin2\.", r"layers.\1.ffn.fc2."),
    (r"^transformer\.layer\.(\d+)\.output_layer_norm\.", r"layers.\1.ffn_norm."),
    (r"^vocab_transform\.", "mlm.dense."),
    (r"^vocab_layer_norm\.", "mlm.norm."),
    (r"^vocab_projector\.weight$", ""),
    (r"^vocab_projector\.bias$", "mlm.bias"),
]
_ALBERT_LAYER = r"^encoder\.albert_layer_groups\.0\.albert_layers\.0\."
_ALBERT = [
    (r"^encoder\.embedding_hidden_mapping_in\.", "project."),
    (_ALBERT_LAYER + r"attention\.query\.", "layers.0.attn.q."),
    (_ALBERT_LAYER + r"attention\.key\.", "layers.0.attn.k."),
    (_ALBERT_LAYER + r"attention\.value\.", "layers.0.attn.v."),
    (_ALBERT_LAYER + r"attention\.dense\.", "layers.0.attn.o."),
    (_ALBERT_LAYER + r"attention\.LayerNorm\.", "layers.0.attn_norm."),
    (_ALBERT_LAYER + r"ffn\.", "layers.0.ffn.fc1."),
    (_ALBERT_LAYER + r"ffn_output\.", "layers.0.ffn.fc2."),
    (_ALBERT_LAYER + r"full_layer_layer_norm\.", "layers.0.ffn_norm."),
    (r"^pooler\.(weight|bias)$", r"pooler.dense.\1"),
    (r"^predictions\.dense\.", "mlm.dense."),
    (r"^predictions\.LayerNorm\.", "mlm.norm."),
    (r"^predictions\.decoder\.weight$", ""),
    (r"^predictions\.decoder\.bias$", "mlm.decoder_bias"),
    (r"^predictions\.bias$", "mlm.bias"),
    (r"^sop_classifier\.classifier\.", "nsp."),
]
LAYOUTS: dict[str, list[tuple[str, str]]] = {
    "hf-bert": _COMMON + _BERT,
    "hf-roberta": _COMMON + _ROBERTA,
    "hf-distilbert": _COMMON + _DISTILBERT,
    "hf-albert": _COMMON + _ALBERT,
}
_QUERY = re.compile(r"^(.*\.attn\.)q\.(weight|bias)$")
_BASE_PREFIX = re.compile(r"^(bert|roberta|distilbert|albert)\.")
_ENCODER_PARTS = ("embeddings.", "project.", "layers.", "pooler.")
_OPTIONAL_PARTS = ("pooler.", "mlm.", "nsp.")


def convert(model: Any, state: dict[str, Any], layout: str, prefix: str) -> dict[str, Any]:
    """Map a Hugging Face state dict onto ``model`` whose encoder sits under ``prefix``."""
    if layout not in LAYOUTS:
        raise ConfigError(f"{type(model).__name__} knows no weight layout {layout!r}; declared "
                          f"layouts: {sorted(LAYOUTS)}")
    rules = [(re.compile(p), r) for p, r in LAYOUTS[layout]]
    own = model.state_dict().keys()
    out: dict[str, Any] = {}
    for key, value in state.items():
        key = _BASE_PREFIX.sub("", key)
        for pattern, repl in rules:
            key = pattern.sub(repl, key)
        if not key:
            continue
        if key.startswith(_ENCODER_PARTS):
            key = prefix + key
        part = key[len(prefix):] if key.startswith(prefix) else key
        if part.startswith(_OPTIONAL_PARTS) and not any(k.startswith(key.rsplit(".", 1)[0])
                                                        for k in own):
            continue  # a head this model does not have
        out[key] = value
    bias = out.pop("mlm.decoder_bias", None)
    if bias is not None and "mlm.bias" not in out and "mlm.bias" in own:
        out["mlm.bias"] = bias
    return fuse_qkv(out)


def fuse_qkv(state: dict[str, Any]) -> dict[str, Any]:
    """Stack each ``….attn.{q,k,v}.{weight,bias}`` triple into ``….attn.qkv.{weight,bias}``;
    an incomplete triple stays as it is, for the strict load to report."""
    for found in [_QUERY.match(k) for k in state]:
        if found is None:
            continue
        head, leaf = found.groups()
        parts = [f"{head}{p}.{leaf}" for p in "qkv"]
        if all(p in state for p in parts):
            state[f"{head}qkv.{leaf}"] = _stack([state.pop(p) for p in parts])
    return state


def _stack(parts: list[Any]) -> Any:
    """``torch.cat(parts)`` along the rows. On CPU the copy goes through numpy's one-thread
    memcpy: a few-MB copy is not worth waking torch's thread pool, which costs tens of
    milliseconds per call on a busy machine (measured: 12 stacks of MiniLM, 1.3 ms vs 25 ms).
    """
    import numpy as np
    import torch

    if any(p.device.type != "cpu" or p.requires_grad for p in parts):
        return torch.cat(parts)
    raw = np.concatenate([p.contiguous().view(torch.uint8).numpy() for p in parts])
    return torch.from_numpy(raw).view(parts[0].dtype)


# -- config.json ---------------------------------------------------------------------------
_ENCODERS = {"bert": "model:bert", "roberta": "model:roberta", "distilbert": "model:distilbert",
             "albert": "model:albert"}
_HEADS = {"ForMaskedLM": "model:bert-mlm", "ForPreTraining": "model:bert-pretraining",
          "ForTokenClassification": "model:bert-token-classifier"}
_NAMES = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert", "albert": "Albert"}


def foreign_config(doc: dict[str, Any]) -> dict[str, Any] | None:
    """``{component, config, layout}`` for a transformers BERT-family ``config.json``."""
    model_type = doc.get("model_type")
    if model_type not in _ENCODERS:
        return None
    arch = (doc.get("architectures") or [f"{_NAMES[model_type]}Model"])[0]
    suffix = arch.removeprefix(_NAMES[model_type])
    if suffix == "Model":
        component = _ENCODERS[model_type]
    elif suffix in _HEADS:
        component = _HEADS[suffix]
    elif suffix == "ForSequenceClassification" and model_type in ("bert", "albert"):
        component = "model:bert-classifier"
    else:
        raise ConfigError(f"architecture {arch!r} of model_type {model_type!r} is not "
                          f"supported; supported: {_NAMES[model_type]}Model, "
                          f"{', '.join(_NAMES[model_type] + s for s in _HEADS)}"
                          + (", …ForSequenceClassification" if model_type in ("bert", "albert")
                             else ""))
    config = _config(model_type, doc)
    config["pooler"] = suffix in ("Model", "ForPreTraining", "ForSequenceClassification") \
        and model_type != "distilbert"
    return {"component": component, "config": config, "layout": f"hf-{model_type}"}


def _config(model_type: str, d: dict[str, Any]) -> dict[str, Any]:
    labels = d.get("id2label")
    num_labels = len(labels) if labels else d.get("num_labels", 2)
    if model_type == "distilbert":
        if d.get("sinusoidal_pos_embds"):
            raise ConfigError("DistilBERT with sinusoidal_pos_embds=True is not supported; "
                              "only learned positions are")
        return dict(vocab_size=d["vocab_size"], hidden_size=d["dim"], num_layers=d["n_layers"],
                    num_heads=d["n_heads"], intermediate_size=d["hidden_dim"],
                    max_position_embeddings=d["max_position_embeddings"], type_vocab_size=0,
                    hidden_act=d.get("activation", "gelu"), hidden_dropout=d.get("dropout", 0.1),
                    attention_dropout=d.get("attention_dropout", 0.1), layer_norm_eps=1e-12,
                    pad_token_id=d.get("pad_token_id", 0), num_labels=num_labels)
    pos = d.get("position_embedding_type", "absolute")
    if pos != "absolute":
        raise ConfigError(f"position_embedding_type {pos!r} is not supported; only "
                          "'absolute'")
    out = dict(vocab_size=d["vocab_size"], hidden_size=d["hidden_size"],
               num_layers=d["num_hidden_layers"], num_heads=d["num_attention_heads"],
               intermediate_size=d["intermediate_size"],
               max_position_embeddings=d["max_position_embeddings"],
               type_vocab_size=d.get("type_vocab_size", 2), hidden_act=d.get("hidden_act", "gelu"),
               hidden_dropout=d.get("hidden_dropout_prob", 0.1),
               attention_dropout=d.get("attention_probs_dropout_prob", 0.1),
               layer_norm_eps=d.get("layer_norm_eps", 1e-12),
               pad_token_id=d.get("pad_token_id", 0), num_labels=num_labels)
    if model_type == "roberta":
        out["position_type"] = "padding-offset"
    if model_type == "albert":
        if d.get("num_hidden_groups", 1) != 1 or d.get("inner_group_num", 1) != 1:
            raise ConfigError("ALBERT with num_hidden_groups or inner_group_num other than 1 "
                              f"is not supported (got {d.get('num_hidden_groups')!r}, "
                              f"{d.get('inner_group_num')!r})")
        out.update(embedding_size=d["embedding_size"], share_layers=True)
    return out
