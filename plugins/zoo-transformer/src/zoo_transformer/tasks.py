"""``zoo run`` task runners: sentence similarity, fill-mask and text generation.

Example:
    $ zoo run all-minilm-l6-v2 "A man is eating food." "A man is eating pasta."
    $ zoo run bert-base "Paris is the [MASK] of France."
    $ zoo run gpt2-small "The meaning of life is"
"""

from __future__ import annotations

from typing import Any

import torch

import zoo_core as zoo
from zoo_core import InputError, ZooError


def _tokenizer(entry_name: str) -> Any:
    """The tokenizer of an entry (its ``tokenizer`` field) or of an ``hf:``/``dir:`` folder."""
    try:
        return zoo.load_tokenizer(entry_name)
    except zoo.UnknownNameError as e:
        raise ZooError(f"{entry_name!r} needs a tokenizer that is not available ({e}). Install "
                       "zoo-tokenizers (`uv sync --all-packages`).") from None


def _types(model: Any, batch: dict[str, Any]) -> Any:
    """Token types for models that have them (DistilBERT has none)."""
    return batch.get("token_type_ids") if model.config.type_vocab_size else None


def _need(inputs: list[str], at_least: int, usage: str) -> None:
    if len(inputs) < at_least:
        raise InputError(f"got {len(inputs)} input(s) {inputs!r}; {usage}")


def sentence_embeddings(entry_name: str, texts: list[str]) -> torch.Tensor:
    """L2-normalised sentence vectors (N, H) of ``texts`` from a sentence-embedding entry."""
    tok = _tokenizer(entry_name)
    model = zoo.load(entry_name)
    length = getattr(model, "max_seq_length", model.config.max_length)  # as encode() truncates
    batch = tok(texts, padding=True, truncation=True, max_length=length, return_tensors="pt")
    with torch.inference_mode():
        emb = model(batch["input_ids"], batch["attention_mask"], _types(model, batch))
    return torch.nn.functional.normalize(emb, dim=-1)


def sentence_similarity(entry_name: str, inputs: list[str]) -> dict[str, Any]:
    """``{"similarity": [[float]]}``: the (N, N) cosine similarities of the input sentences."""
    _need(inputs, 2, 'give two or more sentences: zoo run all-minilm-l6-v2 "A" "B"')
    emb = sentence_embeddings(entry_name, inputs)
    return {"similarity": (emb @ emb.T).tolist()}  # (N, N)


def fill_mask(entry_name: str, inputs: list[str], top_k: int = 5) -> dict[str, Any]:
    """``{"predictions": [...]}``: at each mask of each input, the ``top_k`` tokens with their
    probabilities (schema in ``zoo_core``'s task docs)."""
    _need(inputs, 1, 'give a sentence with [MASK]: zoo run bert-base "Paris is the [MASK]."')
    tok = _tokenizer(entry_name)
    model = zoo.load(entry_name)
    batch = tok(inputs, padding=True, truncation=True, max_length=model.config.max_length,
                return_tensors="pt")
    ids = batch["input_ids"]
    masks = (ids == tok.mask_token_id).nonzero().tolist()
    if not masks:
        raise InputError(f"no {tok.mask_token!r} token in {inputs!r}; write e.g. "
                       f"'Paris is the {tok.mask_token} of France.'")
    with torch.inference_mode():
        out = model(ids, batch["attention_mask"], _types(model, batch))
    logits = getattr(out, "mlm_logits", None)
    logits = out.logits if logits is None else logits  # (B, S, V)
    predictions = []
    for b, s in masks:
        top = logits[b, s].float().softmax(-1).topk(top_k)
        ids_k = top.indices.tolist()
        tokens = tok.convert_ids_to_tokens(ids_k)
        candidates = [{"token": t, "id": i, "score": p}
                      for t, i, p in zip(tokens, ids_k, top.values.tolist(), strict=True)]
        predictions.append({"input": b, "position": s, "candidates": candidates})
    return {"predictions": predictions}


def similarity_table(result: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
    """``zoo run``'s table of a sentence-similarity result: one row per input."""
    inputs = result["inputs"]
    rows = [[f"[{i}] {text}", *[f"{s:.4f}" for s in row]]
            for i, (text, row) in enumerate(zip(inputs, result["similarity"], strict=True))]
    return (f"sentence-similarity ({result['entry']})",
            ["sentence", *[f"[{i}]" for i in range(len(inputs))]], rows)


def fill_mask_table(result: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
    """``zoo run``'s table of a fill-mask result: one row per candidate."""
    rows = [[result["inputs"][p["input"]], p["position"], rank, c["token"], f"{c['score']:.4f}"]
            for p in result["predictions"] for rank, c in enumerate(p["candidates"], 1)]
    return (f"fill-mask ({result['entry']})", ["input", "position", "rank", "token", "score"],
            rows)


#: Greedy continuation length of ``zoo run`` on a text-generation entry.
NEW_TOKENS = 40


def text_generation(entry_name: str, inputs: list[str],
                    max_new_tokens: int = NEW_TOKENS) -> dict[str, Any]:
    """``{"columns": ["prompt", "generated_text", "new_tokens"], "rows": [[str, str, int]]}``:
    each prompt continued greedily (``generated_text`` holds the prompt and its
    continuation, as ``transformers``' pipeline writes it)."""
    _need(inputs, 1, 'give a prompt: zoo run gpt2-small "The meaning of life is"')
    tok = _tokenizer(entry_name)
    model = zoo.load(entry_name)
    rows: list[list[Any]] = []
    for prompt in inputs:
        ids = tok.encode(prompt)
        if not ids:
            raise InputError(f"prompt {prompt!r} gives no tokens; give some text to continue")
        room = model.config.max_positions - len(ids)
        if room <= 0:
            raise InputError(f"prompt of {len(ids)} tokens fills the model's "
                             f"{model.config.max_positions} positions; shorten it")
        out = model.generate(torch.tensor([ids]), max_new_tokens=min(max_new_tokens, room))
        new = [t for t in out[0, len(ids):].tolist() if t != model.config.eos_token_id]
        rows.append([prompt, prompt + tok.decode(new), len(new)])
    return {"columns": ["prompt", "generated_text", "new_tokens"], "rows": rows}
