"""SentencePiece tokenizers (LLaMA, Mistral): BPE by piece score or unigram by Viterbi.

Kudo & Richardson (2018), https://arxiv.org/abs/1808.06226: the text is normalized
(:mod:`zoo_tokenizers.spm_model`; spaces become ``▁``) and segmented as one string, with no
pre-tokenizer.

- **BPE** (Sennrich et al. 2016): join the adjacent pair whose join is the piece of highest
  score, leftmost on ties (:func:`zoo_tokenizers.merge.merge`, O(n log n)). No merge crosses
  a boundary between two characters that no piece holds side by side, so the string is cut
  at such boundaries first and each part's ids are cached, as byte-level BPE caches
  pre-tokens.
- **Unigram** (Kudo 2018, https://arxiv.org/abs/1804.10959): the segmentation whose piece
  scores (log probabilities) add up to the most, by Viterbi; a character no piece covers is
  ``<unk>`` at the lowest score minus 10. Sums are rounded to float32 at each step, as the
  reference does, so near ties break the same way.

A piece outside the vocabulary becomes ``<unk>``, or with byte fallback its UTF-8 bytes as
``<0xNN>`` pieces. User-defined pieces are matched as written and never split; control
pieces (``<s>``, ``[INST]``) are never produced from text and decode to nothing.

The API is ``sentencepiece.SentencePieceProcessor``'s, so code written for it runs with only
the loading line changed (``SentencePiece(model_file=path)``, ``SentencePiece.from_file(path)``
or ``zoo.load(entry)``): ``encode`` of a text or a list with ``out_type=int`` or ``str``,
``add_bos``, ``add_eos``; ``decode`` of ids, pieces or lists of either; ``bos_id()``,
``eos_id()``, ``pad_id()``, ``unk_id()``, ``get_piece_size()``, ``vocab_size()``,
``id_to_piece`` and ``piece_to_id`` (one or a list), ``is_control``/``is_unknown``/
``is_byte``/``is_unused``, and the CamelCase names (``EncodeAsPieces``, ``DecodeIds``...).
``vocab_size`` is also an int, as every zoo tokenizer's.

Example:
    >>> sp = zoo.load("mistral-7b-v0.1-tokenizer")
    >>> sp.encode("Hello world", add_bos=True), sp.decode(sp.encode("Hello world"))
    ([1, 22557, 1526], 'Hello world')
    >>> sp.encode(["Hello world", "hi"], out_type=str)
    [['▁Hello', '▁world'], ['▁hi']]
"""

from __future__ import annotations

import os
import re
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo_core import ConfigError, InputError, Tokenizer, atomic_write

from .engines import python_backend, refuse_surrogates, sentencepiece_backend
from .merge import merge
from .spm_model import (
    BYTE,
    CONTROL,
    NORMAL,
    SPACE,
    UNKNOWN,
    UNUSED,
    USER_DEFINED,
    Normalizer,
    read_model,
)

_CACHE_LIMIT = 200_000
_UNK_PENALTY = 10.0
MODEL_FILE = "tokenizer.model"


class _Count(int):
    """An int that also answers when called: ``sp.vocab_size`` and ``sp.vocab_size()``."""

    def __call__(self) -> int:
        return int(self)


def _f32(x: float, _cell: array = array("f", [0.0])) -> float:  # noqa: B008
    _cell[0] = x
    return _cell[0]


class SentencePiece(Tokenizer):
    """A SentencePiece model read from its ``.model`` bytes.

    Args:
        model: the bytes of a ``.model`` file (or ``model_file=`` its path, or
            ``model_proto=`` its bytes, as ``SentencePieceProcessor`` takes them).
        name: a name for messages.
        backend: the engine, ``"sentencepiece"`` or ``"python"``; by default the
            ``sentencepiece`` library when installed and it passes its self-check
            (:mod:`zoo_tokenizers.engines`), else Python.
    """

    def __init__(self, model: bytes | None = None, name: str = "sentencepiece",
                 backend: str | None = None, *, model_file: str | os.PathLike[str] | None = None,
                 model_proto: bytes | None = None) -> None:
        if model_file is not None:
            path = Path(model_file)
            if not path.is_file():
                raise FileNotFoundError(f"{str(path)!r} does not exist; pass a SentencePiece "
                                        ".model file")
            model, name = path.read_bytes(), path.name if name == "sentencepiece" else name
        model = model if model is not None else model_proto
        if not isinstance(model, (bytes, bytearray)):
            raise InputError(f"pass the model's bytes, model_file= or model_proto=; got "
                             f"{type(model).__name__}")
        self.model_bytes = bytes(model)
        self.name = name
        spec = self.spec = read_model(self.model_bytes)
        if spec.model_type not in ("bpe", "unigram"):
            raise ConfigError(f"{name!r}: SentencePiece model type {spec.model_type!r} is not "
                              "supported; this reads 'bpe' and 'unigram' models")
        self.pieces = [p.text for p in spec.pieces]
        self._ids: dict[str, int] = {}
        for i, p in enumerate(spec.pieces):
            if self._ids.setdefault(p.text, i) != i:
                raise ConfigError(f"{name!r}: piece {p.text!r} appears twice (ids "
                                  f"{self._ids[p.text]} and {i}); the model file is damaged")
        if not 0 <= spec.unk_id < len(self.pieces):
            raise ConfigError(f"{name!r}: unk_id={spec.unk_id} is outside the {len(self.pieces)}"
                              " pieces; the model file is damaged")
        self._unk = spec.unk_id
        types = [p.type for p in spec.pieces]
        self._types = types
        self._bytes = [self._ids.get(f"<0x{b:02X}>", -1) for b in range(256)]
        if spec.byte_fallback and -1 in self._bytes:
            raise ConfigError(f"{name!r}: byte fallback is on but piece "
                              f"'<0x{self._bytes.index(-1):02X}>' is missing")
        user = [p.text for p in spec.pieces if p.type == USER_DEFINED]
        self._user = re.compile("|".join(map(re.escape, sorted(user, key=len, reverse=True))))\
            if user else None
        self.normalize = Normalizer(spec, user)
        # decode drops the space before the first piece when encoding could have added it
        self._strip_first = spec.add_dummy_prefix or spec.remove_extra_whitespaces
        # pieces a segmentation may produce: normal, user-defined, unused (not byte or control)
        usable = [i for i, t in enumerate(types) if t in (NORMAL, USER_DEFINED, UNUSED)]
        if spec.model_type == "bpe":
            if any(types[i] == UNUSED for i in usable):
                raise ConfigError(f"{name!r}: BPE models with UNUSED pieces are not supported")
            order = sorted({spec.pieces[i].score for i in usable}, reverse=True)
            dense = {s: r for r, s in enumerate(order)}
            self._rank = {self.pieces[i]: dense[spec.pieces[i].score] for i in usable}
            self._pairs = {(a, b) for p in self._rank for a, b in zip(p, p[1:], strict=False)}
        else:
            normal = [spec.pieces[i].score for i in usable if types[i] == NORMAL]
            top = max((spec.pieces[i].score for i in usable), default=0.0)
            low = min(normal, default=0.0)
            self._lattice = {self.pieces[i]: (i, spec.pieces[i].score) for i in usable
                             if types[i] != UNUSED}
            self._user_score = top
            self._unk_score = _f32(low - _UNK_PENALTY)
            self._longest = max(map(len, self._lattice), default=1)
        self._cache: dict[str, tuple[int | str, ...]] = {}
        self.backends = {"sentencepiece": sentencepiece_backend(self),
                         "python": python_backend(self._encode_python)}
        self.use_backend(backend)

    def use_backend(self, backend: str | None = None) -> str:
        """Encode with ``backend`` (``"sentencepiece"`` or ``"python"``), or the first that
        passes its self-check; returns its name."""
        name = super().use_backend(backend)
        self._run = self.backends[name].fn
        return name

    # -- identity ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """The number of pieces; also callable, as ``SentencePieceProcessor.vocab_size()``."""
        return _Count(len(self.pieces))

    def get_piece_size(self) -> int:
        return len(self.pieces)

    def __len__(self) -> int:
        return len(self.pieces)

    def unk_id(self) -> int:
        return self.spec.unk_id

    def bos_id(self) -> int:
        """The id of ``<s>``, or -1 when the model has none."""
        return self.spec.bos_id

    def eos_id(self) -> int:
        """The id of ``</s>``, or -1 when the model has none."""
        return self.spec.eos_id

    def pad_id(self) -> int:
        """The id of ``<pad>``, or -1 when the model has none (LLaMA, Mistral)."""
        return self.spec.pad_id

    def is_control(self, i: int) -> bool:
        return self._types[self._check_id(i)] == CONTROL

    def is_unknown(self, i: int) -> bool:
        return self._types[self._check_id(i)] == UNKNOWN

    def is_byte(self, i: int) -> bool:
        return self._types[self._check_id(i)] == BYTE

    def is_unused(self, i: int) -> bool:
        return self._types[self._check_id(i)] == UNUSED

    def get_score(self, i: int) -> float:
        return self.spec.pieces[self._check_id(i)].score

    @property
    def special_tokens(self) -> dict[str, int]:
        """Control and unknown pieces (``<unk>``, ``<s>``, ``</s>``, ``[INST]``…)."""
        return {p: i for i, p in enumerate(self.pieces) if self._types[i] in (CONTROL, UNKNOWN)}

    def id_to_piece(self, i: int | Sequence[int]) -> Any:
        """The piece of id ``i``, or the pieces of a list of ids."""
        if isinstance(i, int):
            return self.pieces[self._check_id(i)]
        return [self.id_to_piece(j) for j in i]

    def piece_to_id(self, piece: str | Sequence[str]) -> Any:
        """The id of ``piece`` (``unk_id()`` when it is not in the vocabulary), or the ids of
        a list of pieces."""
        if isinstance(piece, str):
            return self._ids.get(piece, self.spec.unk_id)
        return [self.piece_to_id(p) for p in piece]

    def _check_id(self, i: Any) -> int:
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(self.pieces):
            raise InputError(f"token id {i!r} is not in the vocabulary of {self.name!r} "
                             f"(ids 0..{len(self.pieces) - 1}); decode only ids it produced")
        return i

    def __repr__(self) -> str:
        return (f"SentencePiece(name={self.name!r}, type={self.spec.model_type!r}, "
                f"vocab_size={self.vocab_size})")

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, input: str | Sequence[str], out_type: type = int, *,  # noqa: A002
               add_bos: bool = False, add_eos: bool = False) -> Any:
        """Ids of ``input`` (pieces with ``out_type=str``), or a list of them for a list of
        texts; ``add_bos``/``add_eos`` put ``<s>``/``</s>`` around each."""
        if input.__class__ is str and out_type is int and not add_bos and not add_eos:
            return self._checked_run(input)  # the everyday call, with nothing to add
        if out_type not in (int, str):
            raise InputError(f"out_type={out_type!r}: pass int (ids) or str (pieces)")
        if isinstance(input, list):
            return [self.encode(t, out_type, add_bos=add_bos, add_eos=add_eos) for t in input]
        if not isinstance(input, str):
            raise InputError(f"text must be a str or a list of str, got "
                             f"{type(input).__name__}: {input!r:.80}")
        ids: list[int] = self._checked_run(input)
        if add_bos:
            ids.insert(0, self._control("bos"))
        if add_eos:
            ids.append(self._control("eos"))
        return ids if out_type is int else [self.pieces[i] for i in ids]

    def _checked_run(self, text: str) -> list[int]:
        try:
            ids: list[int] = self._run(text)
        except (RuntimeError, UnicodeEncodeError):  # how each engine meets a lone surrogate
            refuse_surrogates(text)
            raise
        return ids

    def _encode_python(self, text: str) -> list[int]:
        """Ids of ``text`` by the pure-Python engine (the reference)."""
        norm = self.normalize(text)
        if self.spec.model_type == "bpe":
            return self._fallback(self._bpe(norm))
        return self._fallback(self._unigram(norm))

    def encode_as_pieces(self, input: str | Sequence[str], **options: Any) -> Any:  # noqa: A002
        return self.encode(input, str, **options)

    def encode_as_ids(self, input: str | Sequence[str], **options: Any) -> Any:  # noqa: A002
        return self.encode(input, int, **options)

    def _control(self, which: str) -> int:
        i = getattr(self.spec, f"{which}_id")
        if i < 0:
            raise InputError(f"{self.name!r} has no {which} piece ({which}_id={i}); call "
                             f"encode without add_{which}=True")
        return int(i)

    def _emit(self, piece: str, ids: list[int | str]) -> None:
        """Append the id of ``piece``, or the piece itself when it is not in the vocabulary."""
        i = self._ids.get(piece)
        ids.append(piece if i is None or self._types[i] in (CONTROL, BYTE) else i)

    def _fallback(self, items: list[int | str]) -> list[int]:
        """Unknown pieces (strings among the ids): each run of them becomes one ``<unk>``, or
        its UTF-8 bytes as ``<0xNN>`` pieces with byte fallback."""
        for x in items:
            if x.__class__ is str:
                break
        else:
            return items  # type: ignore[return-value]
        out: list[int] = []
        run: list[str] = []
        for x in [*items, -1]:
            if isinstance(x, str):
                run.append(x)
                continue
            if run:
                if self.spec.byte_fallback:
                    out += [self._bytes[b] for b in "".join(run).encode("utf-8")]
                else:
                    out.append(self._unk)
                run.clear()
            out.append(x)
        out.pop()
        return out

    def _bpe(self, norm: str) -> list[int | str]:
        ids: list[int | str] = []
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        cache, pairs = self._cache, self._pairs
        for chunk, frozen in self._user_split(norm):
            if frozen:
                ids.append(self._ids[chunk])
                continue
            # cut before each '▁' unless some piece holds the two characters side by side
            parts = chunk.split(SPACE)
            part = parts[0]
            for nxt in parts[1:]:
                nxt = SPACE + nxt
                if part and (part[-1], SPACE) not in pairs:
                    ids += cache[part] if part in cache else self._merge(part)
                    part = nxt
                else:
                    part += nxt
            if part:
                ids += cache[part] if part in cache else self._merge(part)
        return ids

    def _merge(self, part: str) -> tuple[int | str, ...]:
        out: list[int | str] = []
        for piece in merge(part, self._rank.get):
            self._emit(piece, out)
        self._cache[part] = ids = tuple(out)
        return ids

    def _user_split(self, norm: str) -> list[tuple[str, bool]]:
        if self._user is None:
            return [(norm, False)]
        out, pos = [], 0
        for m in self._user.finditer(norm):
            if m.start() > pos:
                out.append((norm[pos:m.start()], False))
            out.append((m.group(), True))
            pos = m.end()
        if pos < len(norm):
            out.append((norm[pos:], False))
        return out

    def _unigram(self, norm: str) -> list[int | str]:
        n = len(norm)
        best = array("f", bytes(4 * (n + 1)))
        start = [-1] * (n + 1)
        piece_id = [-1] * (n + 1)
        lattice, longest, cell = self._lattice, self._longest, array("f", [0.0])
        for i in range(n):
            base = best[i]
            single = False
            for end in range(i + 1, min(n, i + longest) + 1):
                hit = lattice.get(norm[i:end])
                if hit is None:
                    continue
                pid, score = hit
                if self._types[pid] == USER_DEFINED:
                    score = _f32(_f32(len(norm[i:end].encode("utf-8")) * self._user_score)
                                 - _f32(0.1))
                cell[0] = base + score
                if start[end] == -1 or cell[0] > best[end]:
                    best[end], start[end], piece_id[end] = cell[0], i, pid
                single = single or end == i + 1
            if not single:
                cell[0] = base + self._unk_score
                if start[i + 1] == -1 or cell[0] > best[i + 1]:
                    best[i + 1], start[i + 1], piece_id[i + 1] = cell[0], i, self._unk
        spans = []
        end = n
        while end > 0:
            spans.append((start[end], end, piece_id[end]))
            end = start[end]
        return [norm[a:b] if pid == self._unk else pid for a, b, pid in reversed(spans)]

    # -- decoding ---------------------------------------------------------------------------
    def decode(self, ids: int | str | Sequence[Any]) -> Any:
        """The text of ``ids`` (or of pieces; a list of lists gives a list of texts): control
        pieces vanish, byte pieces join into UTF-8 (a byte that forms no character becomes
        U+FFFD), ``▁`` becomes a space, and the space the normalizer put in front is taken
        off again. A piece outside the vocabulary is kept as written."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, (int, str)):
            ids = [ids]
        if ids and isinstance(ids[0], (list, tuple)):
            return [self.decode(row) for row in ids]
        out: list[str] = []
        pending = bytearray()
        first = True
        for i in ids:
            if isinstance(i, str):  # a piece: its id, or its own text when it has none
                if i not in self._ids:
                    if pending:
                        out.append(_utf8(pending))
                        pending.clear()
                    text = i.replace(SPACE, " ")
                    out.append(text[1:] if first and self._strip_first and text[:1] == " "
                               else text)
                    first = False
                    continue
                i = self._ids[i]
            kind = self._types[self._check_id(i)]
            if kind == BYTE:
                pending.append(int(self.pieces[i][3:5], 16))
                continue
            if pending:
                out.append(_utf8(pending))
                pending.clear()
                first = False
            if kind == CONTROL:
                continue
            text = self.spec.unk_surface if kind == UNKNOWN else \
                self.pieces[i].replace(SPACE, " ")
            if first and self._strip_first and kind != UNKNOWN and text.startswith(" "):
                text = text[1:]
            first = False
            out.append(text)
        if pending:
            out.append(_utf8(pending))
        return "".join(out)

    # -- files ------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> list[str]:
        """Write the model file as ``tokenizer.model``; return its name."""
        atomic_write(Path(directory) / MODEL_FILE, self.model_bytes)
        return [MODEL_FILE]

    @classmethod
    def load(cls, directory: str | os.PathLike[str], file: str | None = None,
             **options: Any) -> SentencePiece:
        """Read ``file`` (default ``tokenizer.model``, else the only ``*.model*`` file) from
        ``directory``."""
        folder = Path(directory)
        if file is None:
            found = [folder / MODEL_FILE] if (folder / MODEL_FILE).is_file() else \
                sorted(folder.glob("*.model*"))
            if len(found) != 1:
                raise FileNotFoundError(f"{str(folder)!r} holds {len(found)} *.model files; "
                                        "pass file= to name the SentencePiece model")
            path = found[0]
        else:
            path = folder / file
        return cls.from_file(path, **options)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> SentencePiece:
        """Read one ``.model`` file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{str(path)!r} does not exist; pass a SentencePiece "
                                    ".model file")
        return cls(path.read_bytes(), **({"name": path.name} | options))

    def to_tokenizer_json(self) -> dict[str, Any]:
        """This model as an HF ``tokenizers`` description (BPE models)."""
        from .spm_export import tokenizer_json

        return tokenizer_json(self)

    @classmethod
    def example(cls) -> SentencePiece:
        """A tiny BPE model for the contract checks (built in memory, see spm_export)."""
        from .spm_export import tiny_model

        return cls(tiny_model(), name="tiny")

    def example_texts(self) -> list[str]:
        return ["Hello world!", "hello hello world"]

    def bad_inputs(self) -> list[Any]:
        """Texts ``encode`` refuses: anything but a str or a list of str."""
        return [b"bytes, not text", 42, None, ["a list", b"with bytes"]]

    # sentencepiece's CamelCase names
    EncodeAsIds = encode_as_ids
    EncodeAsPieces = encode_as_pieces
    Encode = encode
    Decode = DecodeIds = DecodePieces = decode_ids = decode_pieces = decode
    IdToPiece = id_to_piece
    PieceToId = piece_to_id
    GetPieceSize = get_piece_size


def _utf8(data: bytes | bytearray) -> str:
    """UTF-8 with each byte of an invalid sequence replaced by U+FFFD."""
    out, pos = [], 0
    while True:
        try:
            out.append(data[pos:].decode("utf-8"))
            return "".join(out)
        except UnicodeDecodeError as e:
            out.append(data[pos:pos + e.start].decode("utf-8"))
            out.append("\ufffd" * (e.end - e.start))
            pos += e.end

