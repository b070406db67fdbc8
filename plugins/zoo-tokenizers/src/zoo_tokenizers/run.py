"""``zoo run ENTRY TEXT…`` for tokenizer entries: the tokens and ids of each text."""

from __future__ import annotations

from typing import Any


def tokenize(entry_name: str, inputs: list[str]) -> dict[str, Any]:
    """A table of (text, token, id, start, end) rows, one per token of each input text."""
    import zoo_core as zoo

    tok = zoo.load(entry_name)
    rows: list[list[Any]] = []
    for text in inputs:
        ids = tok.encode(text)
        if hasattr(tok, "encode_full"):  # WordPiece: tokens with input offsets
            enc = tok.encode_full(text)
            rows += [[text, t, i, a, b] for t, i, (a, b) in zip(enc.tokens, enc.ids, enc.offsets,
                                                                 strict=True)]
            continue
        spans = tok.offsets(ids, text) if hasattr(tok, "offsets") else [(0, 0)] * len(ids)
        for i, (a, b) in zip(ids, spans, strict=True):
            piece = tok.decode_single_token_bytes(i).decode("utf-8", "replace")
            rows.append([text, piece, i, a, b])
    return {"title": f"{entry_name}: {sum(1 for _ in rows)} tokens",
            "columns": ["text", "token", "id", "start", "end"], "rows": rows}
