"""SentencePiece models out: an HF ``tokenizer.json``, and a tiny ``.model`` for the checks.

HF ``tokenizers`` runs SentencePiece BPE as a BPE model with byte fallback behind two
normalizers (prepend ``▁``, spaces to ``▁``); its merges are ranked lists of pairs, where
SentencePiece ranks the joined piece by score. Every way of writing a piece as two pieces is
listed, in the order of the piece's score, so both engines take the same joins.
"""

from __future__ import annotations

import struct
from typing import Any

from zoo_core import ConfigError

from .spm_model import BYTE, CONTROL, NORMAL, SPACE, UNKNOWN, USER_DEFINED


def tokenizer_json(sp: Any) -> dict[str, Any]:
    """The HF ``tokenizers`` description of a SentencePiece BPE model (identity normalizer)."""
    spec = sp.spec
    if spec.model_type != "bpe" or spec.charsmap or spec.remove_extra_whitespaces \
            or spec.treat_whitespace_as_suffix or not spec.escape_whitespaces:
        raise ConfigError(
            f"{sp.name!r}: only SentencePiece BPE models with the identity normalizer and no "
            "whitespace removal (the LLaMA / Mistral scheme) export to tokenizer.json; this one "
            f"is {spec.model_type!r} with normalizer {spec.normalizer!r}")
    pieces = sp.pieces
    vocab = {p: i for i, p in enumerate(pieces)}
    rank = sp._rank
    merges = []
    for piece, r in rank.items():
        for k in range(1, len(piece)):
            a, b = piece[:k], piece[k:]
            if a in vocab and b in vocab:
                merges.append((r, vocab[piece], vocab[a], vocab[b], a, b))
    merges.sort()
    specials = [i for i, p in enumerate(spec.pieces) if p.type in (CONTROL, UNKNOWN)]
    normalizers: list[dict[str, Any]] = [
        {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}]
    decoders: list[dict[str, Any]] = [
        {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}]
    if spec.add_dummy_prefix:
        normalizers.insert(0, {"type": "Prepend", "prepend": SPACE})
        decoders.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": pieces[i], "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for i in specials],
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": None, "unk_token": pieces[sp.unk_id()],
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": spec.byte_fallback, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for *_, a, b in merges]},
    }


# -- writing a ModelProto (enough for tests and examples) ---------------------------------------
def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append(v & 0x7F | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def _field(number: int, value: int | float | bytes | str) -> bytes:
    if isinstance(value, bool | int):
        return _varint(number << 3) + _varint(int(value))
    if isinstance(value, float):
        return _varint(number << 3 | 5) + struct.pack("<f", value)
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def write_model(pieces: list[tuple[str, float, int]], *, model_type: int = 2,
                byte_fallback: bool = True, add_dummy_prefix: bool = True,
                remove_extra_whitespaces: bool = False) -> bytes:
    """A ``.model`` file's bytes: ``(piece, score, type)`` triples and the main options."""
    out = b"".join(_field(1, _field(1, p) + _field(2, float(s)) + _field(3, t))
                   for p, s, t in pieces)
    out += _field(2, _field(3, model_type) + _field(35, byte_fallback))
    out += _field(3, _field(1, "identity") + _field(3, add_dummy_prefix)
                  + _field(4, remove_extra_whitespaces))
    return out


def tiny_model() -> bytes:
    """A BPE model of 25 pieces plus the 256 byte pieces, for contract checks and examples."""
    merged = ["▁", "e", "l", "o", "h", "w", "r", "d", "s", "ll", "▁h", "▁w", "or", "ld", "▁he",
              "llo", "▁hello", "▁wor", "▁world", "H", "▁H", "▁Hello"]
    pieces = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL),
              ("<sep>", 0.0, USER_DEFINED)]
    pieces += [(f"<0x{b:02X}>", 0.0, BYTE) for b in range(256)]
    pieces += [(p, -float(k), NORMAL) for k, p in enumerate(merged)]
    return write_model(pieces)
