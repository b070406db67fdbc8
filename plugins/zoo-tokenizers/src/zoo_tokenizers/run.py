"""``zoo run ENTRY TEXT…`` for tokenizer entries: the tokens, ids and offsets of each text.

Spans are character offsets in the input that never overlap: a token gets the characters
that begin in it, so the second half of a character cut in two gets an empty span where the
character ends. A token that is not whole UTF-8 shows its loose bytes as ``<0xF0>``, as
SentencePiece names its byte pieces.
"""

from __future__ import annotations

from typing import Any


def _is_lead(byte: int) -> bool:
    """Whether a UTF-8 byte begins a character (it is not a continuation byte)."""
    return not 0x80 <= byte < 0xC0


def show_bytes(data: bytes) -> str:
    """``data`` as text, each byte that is no part of a whole character as ``<0xNN>``."""
    out, pos = [], 0
    while pos < len(data):
        try:
            out.append(data[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as e:
            out.append(data[pos:pos + e.start].decode("utf-8"))
            out += [f"<0x{b:02X}>" for b in data[pos + e.start:pos + e.end]]
            pos += e.end
    return "".join(out)


def _bpe_tokens(tok: Any, text: str) -> list[dict[str, Any]]:
    ids = tok.encode(text, allowed_special="all")
    tokens, start = [], 0
    for i, data in zip(ids, tok.decode_tokens_bytes(ids), strict=True):
        end = min(len(text), start + sum(map(_is_lead, data)))  # characters begun here
        tokens.append({"token": show_bytes(data), "id": i, "start": start, "end": end})
        start = end
    return tokens


def _spm_tokens(tok: Any, text: str) -> list[dict[str, Any]]:
    """Pieces with spans from the lengths of decoded prefixes (the normalizer may change the
    text); a byte piece spans the character it begins, or nothing."""
    ids = tok.encode(text)
    tokens, start = [], 0
    for k, i in enumerate(ids):
        piece = tok.id_to_piece(i)
        if tok.is_byte(i):
            end = min(len(text), start + _is_lead(int(piece[3:5], 16)))
        else:
            end = max(start, min(len(text), len(tok.decode(ids[:k + 1]))))
        tokens.append({"token": piece, "id": i, "start": start, "end": end})
        start = end
    return tokens


def tokenize(entry_name: str, inputs: list[str]) -> dict[str, Any]:
    """``{"tokens": [[{token, id, start, end}, ...], ...]}``: each input's tokens.

    Special tokens written in the text are encoded as such; ``start``/``end`` are character
    offsets in the input (see the module's doc).
    """
    import zoo_core as zoo

    tok = zoo.load(entry_name)
    tokens: list[list[dict[str, Any]]] = []
    for text in inputs:
        if hasattr(tok, "encode_full"):  # WordPiece: tokens with input spans
            enc = tok.encode_full(text)
            tokens.append([{"token": t, "id": i, "start": a, "end": b}
                           for t, i, (a, b) in zip(enc.tokens, enc.ids, enc.offsets, strict=True)])
        elif hasattr(tok, "is_byte"):  # SentencePiece
            tokens.append(_spm_tokens(tok, text))
        else:
            tokens.append(_bpe_tokens(tok, text))
    return {"tokens": tokens}


def tokens_table(result: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
    """``zoo run``'s table of a tokenize result: one row per token."""
    rows = [[text, t["token"], t["id"], t["start"], t["end"]]
            for text, tokens in zip(result["inputs"], result["tokens"], strict=True)
            for t in tokens]
    return f"tokenize ({result['entry']})", ["text", "token", "id", "start", "end"], rows
