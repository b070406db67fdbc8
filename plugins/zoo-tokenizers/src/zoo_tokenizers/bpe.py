"""Byte-level BPE: GPT-2, cl100k and o200k vocabularies, loaded or trained.

Sennrich et al., "Neural Machine Translation of Rare Words with Subword Units" (2016),
https://arxiv.org/abs/1508.07909, and Radford et al., "Language Models are Unsupervised
Multitask Learners" (2019), section 2.2: text is cut into pre-tokens by a regex
(:mod:`zoo_tokenizers.patterns`), each pre-token is taken as UTF-8 bytes, and adjacent parts
are merged, lowest rank first, while their concatenation is in the vocabulary. A token's id
is its rank, so every byte string has exactly one encoding and any byte sequence round-trips.

Pre-tokens repeat a lot in real text, so each one's ids are cached: the rank-merge loop runs
only on the first sight of a pre-token, and the rest of ``encode`` stays in C-level iterators.

The API is tiktoken's ``Encoding``, so code written for it runs with only the loading line
changed (``zoo.load("cl100k_base")`` for ``tiktoken.get_encoding("cl100k_base")``): ``encode``
with ``allowed_special``/``disallowed_special`` (a disallowed special token in the text is an
``InputError``, a ``ValueError`` as tiktoken's), ``encode_ordinary``, ``encode_batch``,
``encode_ordinary_batch``, ``encode_single_token``, ``encode_to_numpy``, ``decode``,
``decode_batch``, ``decode_bytes``, ``decode_bytes_batch``, ``decode_single_token_bytes``,
``decode_tokens_bytes``, ``decode_with_offsets``, ``n_vocab``, ``max_token_value``,
``eot_token``, ``special_tokens_set``, ``is_special_token``, ``token_byte_values``, ``name``.

Example:
    >>> enc = zoo.load("cl100k_base")
    >>> enc.encode("hello world"), enc.decode(enc.encode("hello world"))
    ([15339, 1917], 'hello world')
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar, Literal

from zoo_core import ConfigError, InputError, Tokenizer

from . import bpe_files
from .engines import (
    SAFE_SPACE_RUN,
    has_long_space_run,
    is_panic,
    python_backend,
    refuse_surrogates,
    tiktoken_backend,
)
from .merge import LONG, merge
from .patterns import Splitter, resolve

_CACHE_LIMIT = 500_000
_NO_RANK = 1 << 62


def pair_table(ranks: dict[bytes, int]) -> list[int]:
    """Rank of every two-byte token at index ``b0 << 8 | b1`` (``_NO_RANK`` if none)."""
    table = [_NO_RANK] * 65536
    for tok, r in ranks.items():
        if len(tok) == 2:
            table[tok[0] << 8 | tok[1]] = r
    return table


def bpe_ranks(piece: bytes, ranks: dict[bytes, int], max_rank: int | None = None,
              pairs: list[int] | None = None) -> list[bytes]:
    """Merge the bytes of ``piece``, lowest-rank adjacent pair first (leftmost on ties).

    Short pieces run the flat loop below, inlined for speed; long ones go to
    :func:`zoo_tokenizers.merge.merge` (O(n log n)).

    Args:
        piece: one pre-token as bytes.
        ranks: token bytes to rank.
        max_rank: merge only into tokens of lower rank (used to recover merge pairs).
        pairs: :func:`pair_table` of ``ranks`` (built here if not given).
    """
    limit = _NO_RANK if max_rank is None else max_rank
    if len(piece) > LONG:
        return merge(piece, ranks.get, limit)
    get = ranks.get
    # rank of each adjacent pair's join; only the merged pair's neighbours change. Parts are
    # kept as their start offsets: part k is piece[pos[k]:pos[k + 1]].
    if pairs is None:
        pair = [get(piece[i:i + 2], _NO_RANK) for i in range(len(piece) - 1)]
    else:
        pair = [pairs[a << 8 | b] for a, b in zip(piece, piece[1:], strict=False)]
    pos = list(range(len(piece) + 1))
    while pair:
        best_rank = min(pair)
        if best_rank >= limit:
            break
        i = pair.index(best_rank)  # leftmost of the lowest rank
        del pos[i + 1], pair[i]
        if i:
            pair[i - 1] = get(piece[pos[i - 1]:pos[i + 1]], _NO_RANK)
        if i < len(pair):
            pair[i] = get(piece[pos[i]:pos[i + 2]], _NO_RANK)
    return [piece[a:b] for a, b in zip(pos, pos[1:], strict=False)]




class _PieceCache(dict):  # type: ignore[type-arg]
    """Pre-token (str) to its ids, computed on first use."""

    def __init__(self, ranks: dict[bytes, int], pairs: list[int]) -> None:
        super().__init__()
        self.ranks, self.pairs = ranks, pairs

    def __missing__(self, piece: str) -> tuple[int, ...]:
        data = piece.encode("utf-8")
        rank = self.ranks.get(data)
        if rank is not None:
            ids: tuple[int, ...] = (rank,)
        else:
            try:
                ids = tuple(map(self.ranks.__getitem__,
                                bpe_ranks(data, self.ranks, pairs=self.pairs)))
            except KeyError as e:
                raise ConfigError(f"byte {e.args[0]!r} of {piece!r} has no token: the vocabulary "
                                 "must hold all 256 single bytes") from None
        self[piece] = ids
        return ids


class UnknownTokenError(InputError, KeyError):
    """An id or a text that is no token of the vocabulary (a ``KeyError``, as tiktoken's)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class BPE(Tokenizer):
    """Byte-level BPE tokenizer with tiktoken's interface.

    Args:
        ranks: token bytes to rank (= id), single bytes included.
        pattern: pre-tokenization regex, or ``"gpt2"``, ``"cl100k"``, ``"o200k"``, ``"tekken"``.
        special_tokens: special token text to id (ids outside the ranks).
        name: a name for messages and saved files.
        trust_pattern: accept a regex that is not one of the known patterns. Off by default:
            a pattern read from a downloaded file could take exponential time on some texts.
        backend: the engine, ``"tiktoken"`` or ``"python"``; by default tiktoken when it is
            installed and passes its self-check (:mod:`zoo_tokenizers.engines`), else Python.
    """

    trainable: ClassVar[bool] = True

    def __init__(self, ranks: dict[bytes, int], pattern: str = "gpt2",
                 special_tokens: dict[str, int] | None = None, name: str = "bpe",
                 trust_pattern: bool = False, backend: str | None = None) -> None:
        self.ranks = dict(ranks)
        self.pattern = resolve(pattern, trust_pattern)
        self.name = name
        self._special = dict(special_tokens or {})
        self._decoder = bpe_files.check_ranks(self.ranks, self._special)
        self._splitter = Splitter(self.pattern)
        self._pairs = pair_table(self.ranks)
        self._cache = _PieceCache(self.ranks, self._pairs)
        self._special_res: dict[frozenset[str], re.Pattern[str]] = {}
        self._pool: Any = None
        self._engines(backend)

    def _engines(self, backend: str | None) -> None:
        self.backends = {"tiktoken": tiktoken_backend(self),
                         "python": python_backend(self._encode_python)}
        self.use_backend(backend)

    def use_backend(self, backend: str | None = None) -> str:
        """Encode with ``backend`` (``"tiktoken"`` or ``"python"``), or the first that passes
        its self-check; returns its name."""
        name = super().use_backend(backend)
        self._run = self.backends[name].fn
        return name

    # -- identity ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return max(self._decoder) + 1 if self._decoder else 0

    n_vocab = vocab_size

    @property
    def max_token_value(self) -> int:
        return self.vocab_size - 1

    def is_special_token(self, token: int) -> bool:
        return token in self._special.values()

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._special)

    @property
    def special_tokens_set(self) -> set[str]:
        return set(self._special)

    @property
    def eot_token(self) -> int | None:
        """The id of ``<|endoftext|>``, if the vocabulary has one."""
        return self._special.get("<|endoftext|>")

    def __repr__(self) -> str:
        return (f"BPE(name={self.name!r}, vocab_size={self.vocab_size}, "
                f"specials={len(self._special)})")

    # -- encoding ---------------------------------------------------------------------------
    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of ``text``, special tokens treated as plain text."""
        if len(text) > SAFE_SPACE_RUN and self.backend != "python" \
                and has_long_space_run(text):
            return self._encode_python(text)  # the compiled engine would panic
        try:
            return self._run(text)  # type: ignore[no-any-return]
        except UnicodeEncodeError:
            refuse_surrogates(text)
            raise
        except BaseException as e:  # a panic is no Exception: never let one reach the user
            if not is_panic(e):
                raise
            return self._encode_python(text)

    def _encode_python(self, text: str) -> list[int]:
        """:meth:`encode_ordinary` by the pure-Python engine (the reference)."""
        if len(self._cache) > _CACHE_LIMIT:
            self._cache.clear()
        try:
            return list(chain.from_iterable(map(self._cache.__getitem__,
                                                self._splitter.split(text))))
        except UnicodeEncodeError:
            refuse_surrogates(text)
            raise

    def encode(self, text: str, *, allowed_special: Literal["all"] | Collection[str] = (),
               disallowed_special: Literal["all"] | Collection[str] = "all") -> list[int]:
        """Ids of ``text``.

        A special token written in ``text`` is encoded as one id when it is in
        ``allowed_special``, is an error when it is in ``disallowed_special`` (by default every
        special token not allowed), and is plain text otherwise.
        """
        allowed = self._allowed(text, allowed_special, disallowed_special)
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        pos = 0
        for m in self._special_re(allowed).finditer(text):
            ids += self.encode_ordinary(text[pos:m.start()])
            ids.append(self._special[m.group()])
            pos = m.end()
        ids += self.encode_ordinary(text[pos:])
        return ids

    def _allowed(self, text: str, allowed_special: Any = (),
                 disallowed_special: Any = "all") -> set[str]:
        """The special tokens ``text`` may hold; refuses a text that holds a disallowed one."""
        if not isinstance(text, str):
            raise InputError(f"text must be a str, got {type(text).__name__}: {text!r:.80}; "
                             "decode bytes first (data.decode('utf-8'))")
        allowed = self._specials_arg(allowed_special, "allowed_special")
        disallowed = (self.special_tokens_set - allowed if disallowed_special == "all"
                      else self._specials_arg(disallowed_special, "disallowed_special"))
        m = self._special_re(disallowed).search(text) if disallowed else None
        if m:
            raise InputError(
                f"text contains the special token {m.group()!r} at index {m.start()}, which "
                f"is disallowed; pass allowed_special={{{m.group()!r}}} (or 'all') to encode "
                "it as a special token, or disallowed_special=() to encode it as plain text")
        return allowed

    def _specials_arg(self, value: Any, what: str) -> set[str]:
        if value == "all":
            return self.special_tokens_set
        if isinstance(value, str):
            raise InputError(f"{what}={value!r}: pass 'all' or a collection of special tokens")
        chosen = set(value)
        unknown = chosen - self.special_tokens_set
        if unknown:
            raise InputError(f"{what} names unknown special token(s) {sorted(unknown)}; this "
                             f"tokenizer has {sorted(self._special)}")
        return chosen

    def _special_re(self, tokens: set[str]) -> re.Pattern[str]:
        key = frozenset(tokens)
        if key not in self._special_res:
            alts = sorted(key, key=len, reverse=True)
            self._special_res[key] = re.compile("|".join(map(re.escape, alts)))
        return self._special_res[key]

    def encode_batch(self, texts: Sequence[str], *, num_workers: int | None = None,
                     num_threads: int | None = None, **options: Any) -> list[list[int]]:
        """Ids of each text (``options`` as :meth:`encode`'s), spread over ``num_workers``
        (tiktoken's ``num_threads``; default: all cores) when the batch is large enough to pay
        for it."""
        from .parallel import check_workers, encode_batch

        num_workers = num_workers if num_workers is not None else num_threads
        texts = list(texts)
        engine = self.backends[self.backend].engine() if self.backend == "tiktoken" else None
        if engine is not None and not any(map(has_long_space_run, texts)):  # tiktoken's threads
            check_workers(num_workers)
            for text in texts:  # our checks and messages first
                refuse_surrogates(text)
                self._allowed(text, **options)
            return engine.encode_batch(  # type: ignore[no-any-return]
                texts, num_threads=num_workers or os.cpu_count() or 1, **options)
        return encode_batch(self, texts, num_workers, options)

    def encode_ordinary_batch(self, texts: Sequence[str], *, num_threads: int | None = None
                              ) -> list[list[int]]:
        """Ids of each text, special tokens treated as plain text."""
        return self.encode_batch(texts, num_threads=num_threads, disallowed_special=())

    def encode_single_token(self, text_or_bytes: str | bytes) -> int:
        """The id of the one token whose bytes (or text, special tokens included) these are."""
        data = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) \
            else bytes(text_or_bytes)
        rank = self.ranks.get(data)
        if rank is None:
            rank = self._special.get(data.decode("utf-8", "replace"))
        if rank is None:
            raise UnknownTokenError(f"{text_or_bytes!r} is no single token of {self.name!r}; "
                                    "encode() cuts a text into tokens")
        return rank

    def encode_to_numpy(self, text: str, **options: Any) -> Any:
        """:meth:`encode` as a ``numpy`` uint32 array."""
        import numpy as np

        return np.asarray(self.encode(text, **options), dtype=np.uint32)

    def encode_with_offsets(self, text: str, **options: Any) -> tuple[list[int], list[int]]:
        """Ids of ``text`` and the index in ``text`` of the first character of each token.

        A token that starts inside a multi-byte character gets that character's index.
        """
        ids = self.encode(text, **options)
        _, offsets = self.decode_with_offsets(ids)
        return ids, offsets

    # -- decoding ---------------------------------------------------------------------------
    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The bytes of ``ids`` (special tokens as their text)."""
        if hasattr(ids, "tolist"):  # a tensor or array of ids
            ids = ids.tolist()
        try:
            return b"".join(map(self._decoder.__getitem__, ids))
        except (KeyError, TypeError):
            bad = next(i for i in ids if not isinstance(i, int) or i not in self._decoder)
            raise UnknownTokenError(
                f"token id {bad!r} is not in the vocabulary of {self.name!r} (ids "
                f"0..{self.vocab_size - 1}); decode only ids it produced") from None

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """The text of ``ids``; ``errors="strict"`` refuses ids that make invalid UTF-8."""
        data = self.decode_bytes(ids)
        try:
            return data.decode("utf-8", errors)
        except UnicodeDecodeError as e:
            raise InputError(
                f"ids decode to invalid UTF-8: bytes {data[e.start:e.end]!r} at byte {e.start} "
                f"({e.reason}); decode a complete sequence or pass errors='replace'") from None

    def decode_batch(self, batch: Sequence[Sequence[int]], *, errors: str = "replace",
                     num_threads: int | None = None) -> list[str]:
        """The text of each list of ids (``num_threads`` is accepted for tiktoken's sake;
        decoding is a join, faster than threads)."""
        return [self.decode(ids, errors) for ids in batch]

    def decode_bytes_batch(self, batch: Sequence[Sequence[int]], *,
                           num_threads: int | None = None) -> list[bytes]:
        """The bytes of each list of ids."""
        return [self.decode_bytes(ids) for ids in batch]

    def decode_single_token_bytes(self, token: int) -> bytes:
        """The bytes of one token."""
        return self.decode_bytes([token])

    def decode_tokens_bytes(self, ids: Sequence[int]) -> list[bytes]:
        """The bytes of each token."""
        return [self.decode_single_token_bytes(i) for i in ids]

    def decode_with_offsets(self, ids: Sequence[int]) -> tuple[str, list[int]]:
        """The text of ``ids`` and the character index where each token starts in it.

        A token's offset counts the characters begun by earlier tokens (bytes that are not
        UTF-8 continuation bytes); a token that starts with a continuation byte belongs to
        the character already begun.
        """
        offsets, chars = [], 0
        for piece in self.decode_tokens_bytes(ids):
            cont = bool(piece) and 0x80 <= piece[0] < 0xC0
            offsets.append(max(0, chars - cont))
            chars += sum(1 for b in piece if not 0x80 <= b < 0xC0)
        return self.decode(ids), offsets

    def token_byte_values(self) -> list[bytes]:
        """Every mergeable token's bytes, sorted by bytes (as tiktoken lists them)."""
        return sorted(self.ranks)

    # -- files ------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> list[str]:
        """Write ``bpe.tiktoken`` (ranks), ``zoo_bpe.json`` (pattern, special tokens) and an HF
        ``tokenizer.json``; return the file names."""
        return bpe_files.save_bpe(self, Path(directory))

    @classmethod
    def load(cls, directory: str | os.PathLike[str], **options: Any) -> BPE:
        """Read our files, GPT-2 ``encoder.json`` + ``vocab.bpe``, a tiktoken rank file (plain
        or ``.gz``; ``pattern=`` and ``special_tokens=`` name the rest) or an HF
        ``tokenizer.json`` from ``directory``."""
        return bpe_files.load_bpe(cls, Path(directory), **options)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> BPE:
        """Read one ``tokenizer.json`` or tiktoken rank file."""
        return bpe_files.load_bpe_file(cls, Path(path), **options)

    def to_tiktoken(self, path: str | os.PathLike[str]) -> None:
        """Write the ranks as a tiktoken file (base64 token, space, rank per line)."""
        bpe_files.write_tiktoken(self.ranks, Path(path))

    def to_tokenizer_json(self) -> dict[str, Any]:
        """This tokenizer as an HF ``tokenizers`` description (``Tokenizer.from_str``)."""
        return bpe_files.bpe_tokenizer_json(self)

    # -- training ---------------------------------------------------------------------------
    @classmethod
    def trained(cls, texts: Iterable[str], vocab_size: int, **options: Any) -> BPE:
        """A new byte-level BPE learned from ``texts`` (see :mod:`zoo_tokenizers.bpe_train`)."""
        from .bpe_train import train_bpe

        return train_bpe(cls, texts, vocab_size, **options)

    def train(self, texts: Iterable[str], vocab_size: int, **options: Any) -> BPE:
        """Learn a vocabulary of ``vocab_size`` with this tokenizer's pattern; returns a new
        tokenizer (this one is unchanged)."""
        return type(self).trained(texts, vocab_size,
                                  **({"pattern": self.pattern, "trust_pattern": True} | options))

    @classmethod
    def example(cls) -> BPE:
        """A small BPE trained on a few sentences, for the contract checks."""
        texts = ["Hello world! zoo tokenizers: 12 animals, one registry.",
                 "  spaces\tand\nlines, and more words for the tokenizer "] * 4
        return cls.trained(texts, vocab_size=300, special_tokens=["<|endoftext|>"])

    def bad_inputs(self) -> list[Any]:
        """Texts ``encode`` refuses: not a str, or a special token it was not allowed."""
        return [b"bytes, not text", 42, None, *sorted(self.special_tokens)[:1]]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None
        state["_cache"] = _PieceCache(self.ranks, self._pairs)
        state["_special_res"] = {}
        del state["backends"], state["_run"]  # engines are rebuilt (and re-checked) on unpickle
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._engines(self.backend)
