"""SentencePiece ``.model`` files: the ModelProto read by a small protobuf reader, and the
normalizer it describes.

Kudo & Richardson, "SentencePiece: A simple and language independent subword tokenizer and
detokenizer for Neural Text Processing" (2018), https://arxiv.org/abs/1808.06226. A model file
is one protobuf message (``sentencepiece_model.proto``): the pieces (text, score, type), a
trainer spec (model type, byte fallback, the unk/bos/eos/pad ids) and a normalizer spec
(whitespace rules and, for ``nmt_nfkc``, a precompiled character map).

Why a reader of our own rather than the ``protobuf`` runtime: the file needs five wire-format
rules (varint, 32-bit, length-delimited, and skipping the two others) and a dozen field
numbers, about forty lines; the runtime would be a dependency, and a generated ``_pb2`` module,
for that. Unknown fields are skipped, so newer files still load.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from zoo_core import ConfigError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}
SPACE = "\u2581"  # '▁', the visible stand-in for a space inside pieces


@dataclass
class Piece:
    text: str
    score: float = 0.0
    type: int = NORMAL


@dataclass
class ModelSpec:
    """What encoding needs from a ModelProto (defaults are the proto's)."""

    pieces: list[Piece] = field(default_factory=list)
    model_type: str = "unigram"
    byte_fallback: bool = False
    treat_whitespace_as_suffix: bool = False
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    unk_surface: str = " \u2047 "
    normalizer: str = ""
    charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes | float]]:
    """``(field number, value)`` of one message: ints, bytes (length-delimited) or floats."""
    out: list[tuple[int, int | bytes | float]] = []
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            out.append((number, buf[pos:pos + size]))
            pos += size
        elif wire == 5:
            out.append((number, struct.unpack_from("<f", buf, pos)[0]))
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise ConfigError(f"protobuf wire type {wire} at byte {pos}: not a SentencePiece "
                              "model file (pass the .model written by spm_train)")
    if pos != end:
        raise ConfigError("the SentencePiece model file is truncated; download it again")
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def read_model(data: bytes) -> ModelSpec:
    """Parse the bytes of a SentencePiece ``.model`` file."""
    spec = ModelSpec()
    try:
        top = _fields(data)
    except (IndexError, struct.error):
        raise ConfigError("the file is not a SentencePiece model (its protobuf does not "
                          "parse); pass a .model file") from None
    for number, value in top:
        if number == 1 and isinstance(value, bytes):
            piece = Piece("")
            for n, v in _fields(value):
                if n == 1 and isinstance(v, bytes):
                    piece.text = v.decode("utf-8")
                elif n == 2 and isinstance(v, float):
                    piece.score = v
                elif n == 3 and isinstance(v, int):
                    piece.type = v
            spec.pieces.append(piece)
        elif number == 2 and isinstance(value, bytes):
            _trainer(spec, value)
        elif number == 3 and isinstance(value, bytes):
            _normalizer(spec, value)
    if not spec.pieces:
        raise ConfigError("the SentencePiece model has no pieces; is this a .model file?")
    return spec


def _trainer(spec: ModelSpec, buf: bytes) -> None:
    for n, v in _fields(buf):
        if n == 3 and isinstance(v, int):
            spec.model_type = MODEL_TYPES.get(v, str(v))
        elif n == 35:
            spec.byte_fallback = bool(v)
        elif n == 24:
            spec.treat_whitespace_as_suffix = bool(v)
        elif n in (40, 41, 42, 43) and isinstance(v, int):
            setattr(spec, {40: "unk_id", 41: "bos_id", 42: "eos_id", 43: "pad_id"}[n],
                    _signed(v))
        elif n == 44 and isinstance(v, bytes):
            spec.unk_surface = v.decode("utf-8")


def _normalizer(spec: ModelSpec, buf: bytes) -> None:
    for n, v in _fields(buf):
        if n == 1 and isinstance(v, bytes):
            spec.normalizer = v.decode("utf-8")
        elif n == 2 and isinstance(v, bytes):
            spec.charsmap = v
        elif n in (3, 4, 5):
            setattr(spec, {3: "add_dummy_prefix", 4: "remove_extra_whitespaces",
                           5: "escape_whitespaces"}[n], bool(v))


class CharsMap:
    """The precompiled character map of ``nmt_nfkc``: a double-array trie (darts-clone layout)
    from UTF-8 byte strings to replacement strings, looked up longest match first.

    The blob is ``uint32 trie size``, the trie's 32-bit units, then the replacement strings,
    each ended by a NUL byte; a trie value is the offset of its replacement.
    """

    def __init__(self, blob: bytes) -> None:
        (size,) = struct.unpack_from("<I", blob)
        if size % 4 or 4 + size > len(blob):
            raise ConfigError(f"precompiled charsmap: trie of {size} bytes does not fit in "
                              f"{len(blob)}; the model file is damaged")
        self.units = struct.unpack_from(f"<{size // 4}I", blob, 4)
        self.strings = blob[4 + size:]

    def longest(self, data: bytes, pos: int) -> tuple[int, bytes] | None:
        """``(length, replacement)`` of the longest rule matching ``data[pos:]``, if any."""
        units = self.units
        unit = units[0]
        node = (unit >> 10) << ((unit & 512) >> 6)
        best = None
        for i in range(pos, len(data)):
            c = data[i]
            node ^= c
            unit = units[node]
            if unit & 0x800000FF != c:
                break
            node ^= (unit >> 10) << ((unit & 512) >> 6)
            if unit >> 8 & 1:
                value = units[node] & 0x7FFFFFFF
                best = (i + 1 - pos, self.strings[value:self.strings.index(b"\0", value)])
        return best


class Normalizer:
    """SentencePiece's normalizer: character map, then the whitespace rules of the spec.

    User-defined pieces are matched first and left as written. With
    ``remove_extra_whitespaces`` leading, trailing and repeated spaces go; with
    ``add_dummy_prefix`` a space is put in front (so a word at the start looks like one
    inside); with ``escape_whitespaces`` spaces become ``▁``.
    """

    def __init__(self, spec: ModelSpec, user_defined: list[str]) -> None:
        self.spec = spec
        self.charsmap = CharsMap(spec.charsmap) if spec.charsmap else None
        alts = sorted((u.encode("utf-8") for u in user_defined), key=len, reverse=True)
        self.user = re.compile(b"|".join(map(re.escape, alts))) if alts else None

    def __call__(self, text: str) -> str:
        spec = self.spec
        if self.charsmap is None and self.user is None:
            if spec.remove_extra_whitespaces:
                text = re.sub(" +", " ", text.strip(" "))
            out = text
        else:
            out = self._mapped(text)
        if not out:
            return ""
        if spec.add_dummy_prefix:
            out = out + " " if spec.treat_whitespace_as_suffix else " " + out
        return out.replace(" ", SPACE) if spec.escape_whitespaces else out

    def _mapped(self, text: str) -> str:
        """Map each longest rule (or user-defined piece) and apply the whitespace rules."""
        data = text.encode("utf-8", "surrogatepass")
        user = self.user
        trim = self.spec.remove_extra_whitespaces
        parts: list[bytes] = []
        prev_space = trim  # at the start, spaces are leading ones
        pos = 0
        while pos < len(data):
            m = user.match(data, pos) if user is not None else None
            if m:
                piece = m.group()
                step = len(piece)
            else:
                hit = self.charsmap.longest(data, pos) if self.charsmap else None
                if hit:
                    step, piece = hit
                else:
                    step = _char_len(data, pos)
                    piece = data[pos:pos + step]
            pos += step
            if prev_space:
                piece = piece.lstrip(b" ")
            if piece:
                parts.append(piece)
                prev_space = trim and piece.endswith(b" ")
        out = b"".join(parts).decode("utf-8", "replace")
        return out.rstrip(" ") if trim else out


def _char_len(data: bytes, pos: int) -> int:
    b = data[pos]
    n = 1 if b < 0x80 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4
    return min(n, len(data) - pos)
