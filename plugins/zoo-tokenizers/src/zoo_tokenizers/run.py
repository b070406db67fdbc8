"""``zoo run ENTRY TEXT…`` for tokenizer entries: the tokens, ids and offsets of each text."""

from __future__ import annotations

from itertools import accumulate
from typing import Any


def tokenize(entry_name: str, inputs: list[str]) -> dict[str, Any]:
    """``{"tokens": [[{token, id, start, end}, ...], ...]}``: each input's tokens.

    Special tokens written in the text are encoded as such; ``start``/``end`` are character
    offsets in the input (a BPE token inside a multi-byte character gets that character).
    """
    import zoo_core as zoo

    tok = zoo.load(entry_name)
    tokens: list[list[dict[str, Any]]] = []
    for text in inputs:
        if hasattr(tok, "encode_full"):  # WordPiece: tokens with input spans
            enc = tok.encode_full(text)
            tokens.append([{"token": t, "id": i, "start": a, "end": b}
                           for t, i, (a, b) in zip(enc.tokens, enc.ids, enc.offsets, strict=True)])
            continue
        if hasattr(tok, "id_to_piece"):  # SentencePiece: pieces, spans from decoded prefixes
            ids = tok.encode(text)
            # a partial UTF-8 character decodes to U+FFFD: keep spans ordered and inside text
            ends = list(accumulate((min(len(text), len(tok.decode(ids[:k + 1])))
                                    for k in range(len(ids))), max))
            starts = [0, *ends[:-1]]
            tokens.append([{"token": tok.id_to_piece(i), "id": i, "start": a, "end": b}
                           for i, a, b in zip(ids, starts, ends, strict=True)])
            continue
        ids, starts = tok.encode_with_offsets(text, allowed_special="all")
        ends = [*starts[1:], len(text)]
        tokens.append([
            {"token": tok.decode_single_token_bytes(i).decode("utf-8", "replace"), "id": i,
             "start": a, "end": max(b, min(a + 1, len(text)))}
            for i, a, b in zip(ids, starts, ends, strict=True)])
    return {"tokens": tokens}


def tokens_table(result: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
    """``zoo run``'s table of a tokenize result: one row per token."""
    rows = [[text, t["token"], t["id"], t["start"], t["end"]]
            for text, tokens in zip(result["inputs"], result["tokens"], strict=True)
            for t in tokens]
    return f"tokenize ({result['entry']})", ["text", "token", "id", "start", "end"], rows
