"""WordPiece: BERT's subword tokenizer, loaded from ``vocab.txt`` / ``tokenizer.json`` or trained.

Wu et al., "Google's Neural Machine Translation System" (2016), https://arxiv.org/abs/1609.08144,
section 4.1, and Devlin et al., "BERT" (2018), https://arxiv.org/abs/1810.04805, section 3:
after BERT's basic tokenizer (:mod:`zoo_tokenizers.bert_pretok`) each word is cut greedily,
longest match first, into vocabulary pieces; pieces after the first carry the ``##`` prefix,
and a word with no full cover (or longer than ``max_input_chars_per_word``) is ``[UNK]``.
Special tokens written in the text (``"the [MASK] sat"``) are recognised as such.

Example:
    >>> tok = zoo.load("bert-base-uncased")
    >>> batch = tok(["The cat sat.", "A dog"], ["on the mat", "barked"], padding=True,
    ...             return_tensors="pt")
    >>> batch["input_ids"].shape, batch["token_type_ids"][0].tolist()[:6]
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from zoo_core import ConfigError, InputError, Tokenizer

from . import formats
from .bert_pretok import BertNormalizer, BertPreTokenizer
from .encoding import Encoding, padding_strategy, to_batch, truncation_lengths
from .engines import python_backend, refuse_surrogates, tokenizers_backend

SPECIAL_ROLES = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
_DEFAULT_SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                     "sep_token": "[SEP]", "mask_token": "[MASK]"}


class WordPiece(Tokenizer):
    """BERT WordPiece tokenizer, callable like a ``transformers`` tokenizer.

    Args:
        vocab: token to id (ids need not be contiguous but must be unique).
        lowercase: lower-case the text (the ``uncased`` models).
        strip_accents: drop accents; ``None`` follows ``lowercase``.
        tokenize_chinese_chars: make each CJK ideograph a word of its own.
        clean_text: drop control characters, map whitespace to spaces.
        continuing_subword_prefix: the prefix of non-initial pieces.
        max_input_chars_per_word: longer words become ``unk_token``.
        model_max_length: the default ``max_length`` of truncation.
        pad_token, unk_token, cls_token, sep_token, mask_token: the special tokens.
        backend: the engine of :meth:`encode_plain`, ``"python"`` (the default: measured
            faster than HF ``tokenizers`` on one thread, see the README) or ``"tokenizers"``
            (HF ``tokenizers`` on this vocabulary, after its self-check).
    """

    trainable: ClassVar[bool] = True
    lossless: ClassVar[bool] = False  # lower-casing and accent stripping lose information

    def __init__(
        self, vocab: dict[str, int], *, lowercase: bool = True, strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True, clean_text: bool = True,
        continuing_subword_prefix: str = "##", max_input_chars_per_word: int = 100,
        model_max_length: int = 512, pad_token: str = "[PAD]", unk_token: str = "[UNK]",
        cls_token: str = "[CLS]", sep_token: str = "[SEP]", mask_token: str = "[MASK]",
        backend: str | None = None,
    ) -> None:
        formats.check_unique_ids(vocab, "vocab")
        self.vocab = dict(vocab)
        self.inv_vocab = {i: t for t, i in self.vocab.items()}
        self.normalizer = BertNormalizer(clean_text, tokenize_chinese_chars, strip_accents,
                                         lowercase)
        self.pretok = BertPreTokenizer(self.normalizer)
        self.prefix = continuing_subword_prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        self.model_max_length = model_max_length
        self.pad_token, self.unk_token, self.cls_token = pad_token, unk_token, cls_token
        self.sep_token, self.mask_token = sep_token, mask_token
        for role in SPECIAL_ROLES:
            token = getattr(self, role)
            if token not in self.vocab:
                raise ConfigError(f"{role}={token!r} is not in the vocabulary; add it to the "
                                 f"vocab or pass {role}= one of its tokens")
        specials = sorted(self.special_tokens, key=len, reverse=True)
        self._special_re = re.compile("|".join(re.escape(s) for s in specials))
        self._cache: dict[str, list[tuple[int, int, int]]] = {}
        self._pool: Any = None
        self._engines(backend)

    def _engines(self, backend: str | None) -> None:
        self.backends = {"python": python_backend(self._encode_plain_python),
                         "tokenizers": tokenizers_backend(self)}
        self.use_backend(backend)

    def use_backend(self, backend: str | None = None) -> str:
        """Run :meth:`encode_plain` on ``backend`` (``"python"`` or ``"tokenizers"``), or on the
        first that passes its self-check; returns its name."""
        name = super().use_backend(backend)
        self._run = self.backends[name].fn
        return name

    # -- identity ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return max(self.inv_vocab) + 1 if self.inv_vocab else 0

    @property
    def special_tokens(self) -> dict[str, int]:
        return {getattr(self, r): self.vocab[getattr(self, r)] for r in SPECIAL_ROLES}

    pad_token_id = property(lambda self: self.vocab[self.pad_token])
    unk_token_id = property(lambda self: self.vocab[self.unk_token])
    cls_token_id = property(lambda self: self.vocab[self.cls_token])
    sep_token_id = property(lambda self: self.vocab[self.sep_token])
    mask_token_id = property(lambda self: self.vocab[self.mask_token])

    def options(self) -> dict[str, Any]:
        """The constructor options besides ``vocab`` (what ``tokenizer_config.json`` holds)."""
        n = self.normalizer
        return {"lowercase": n.lowercase, "strip_accents": n.strip_accents,
                "tokenize_chinese_chars": n.handle_chinese_chars, "clean_text": n.clean_text,
                "continuing_subword_prefix": self.prefix,
                "max_input_chars_per_word": self.max_input_chars_per_word,
                "model_max_length": self.model_max_length,
                **{r: getattr(self, r) for r in SPECIAL_ROLES}}

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (f"WordPiece(vocab_size={self.vocab_size}, lowercase={self.normalizer.lowercase}, "
                f"model_max_length={self.model_max_length})")

    # -- the model --------------------------------------------------------------------------
    def _word_pieces(self, word: str) -> list[tuple[int, int, int]]:
        """``(id, start, end)`` pieces of one normalised word (character spans in the word)."""
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        vocab, n, unk = self.vocab, len(word), self.unk_token_id
        pieces: list[tuple[int, int, int]] = []
        start = 0 if n <= self.max_input_chars_per_word else n + 1
        while start < n:
            end, found = n, None
            while start < end:
                found = vocab.get(word[start:end] if start == 0 else self.prefix + word[start:end])
                if found is not None:
                    break
                end -= 1
            if found is None:
                break
            pieces.append((found, start, end))
            start = end
        if start != n:  # too long, or no piece covers the rest
            pieces = [(unk, 0, n)]
        if len(self._cache) < 1_000_000:
            self._cache[word] = pieces
        return pieces

    def encode_plain(self, text: str) -> Encoding:
        """Tokens of ``text`` without special tokens around it, with input-string offsets."""
        refuse_surrogates(text)
        return self._run(text)  # type: ignore[no-any-return]

    def _encode_plain_python(self, text: str) -> Encoding:
        """:meth:`encode_plain` by the pure-Python engine (the reference)."""
        enc = Encoding()
        pos = 0
        segments: list[tuple[int, int, bool]] = []
        for m in self._special_re.finditer(text):
            segments += [(pos, m.start(), False), (m.start(), m.end(), True)]
            pos = m.end()
        segments.append((pos, len(text), False))
        inv = self.inv_vocab
        for a, b, special in segments:
            if special:
                tid = self.vocab[text[a:b]]
                enc.ids.append(tid)
                enc.tokens.append(text[a:b])
                enc.offsets.append((a, b))
                continue
            for word, src in self.pretok.split(text[a:b], a):
                for tid, s, e in self._word_pieces(word):
                    enc.ids.append(tid)
                    enc.tokens.append(inv[tid])
                    enc.offsets.append((src[s], src[e - 1] + 1))
        n = len(enc.ids)
        enc.type_ids, enc.special_tokens_mask, enc.attention_mask = [0] * n, [0] * n, [1] * n
        return enc

    def tokenize(self, text: str) -> list[str]:
        """The token strings of ``text`` (no special tokens added)."""
        return self.encode_plain(text).tokens

    def encode_full(
        self, text: str, pair: str | None = None, *, add_special_tokens: bool = True,
        truncation: bool | str = False, max_length: int | None = None,
    ) -> Encoding:
        """Encode one text or a pair, with special tokens, type ids, offsets and truncation."""
        for what, value in (("text", text), ("pair", pair)):
            if not isinstance(value, str) and (what == "text" or value is not None):
                raise InputError(f"{what} must be a str, got {type(value).__name__}: "
                                 f"{value!r:.80}; decode bytes first (data.decode('utf-8'))")
        first = self.encode_plain(text)
        second = None if pair is None else self.encode_plain(pair)
        if truncation:
            strategy = "longest_first" if truncation is True else str(truncation)
            limit = self.model_max_length if max_length is None else max_length
            budget = limit - (self.num_special_tokens(pair is not None) if add_special_tokens
                              else 0)
            n1, n2 = truncation_lengths(len(first), None if second is None else len(second),
                                        budget, strategy)
            first.truncate(n1)
            if second is not None:
                second.truncate(n2)
        if not add_special_tokens:
            if second is None:
                return first
            return _concat([first, _typed(second, 1)])
        parts = [self._special(self.cls_token, 0), first, self._special(self.sep_token, 0)]
        if second is not None:
            parts += [_typed(second, 1), self._special(self.sep_token, 1)]
        return _concat(parts)

    def num_special_tokens(self, pair: bool = False) -> int:
        """How many special tokens ``[CLS] … [SEP] (… [SEP])`` adds."""
        return 3 if pair else 2

    def _special(self, token: str, type_id: int) -> Encoding:
        return Encoding([self.vocab[token]], [token], [(0, 0)], [type_id], [1], [1])

    # -- the Tokenizer interface ------------------------------------------------------------
    def encode(self, text: str, pair: str | None = None, *, add_special_tokens: bool = True,
               truncation: bool | str = False, max_length: int | None = None) -> list[int]:
        """Ids of ``text`` (and ``pair``): ``[CLS] text [SEP] (pair [SEP])``."""
        return self.encode_full(text, pair, add_special_tokens=add_special_tokens,
                                truncation=truncation, max_length=max_length).ids

    def encode_batch(self, texts: Sequence[str], *, num_workers: int | None = None,
                     **options: Any) -> list[list[int]]:
        """Ids of each text, spread over ``num_workers`` processes (default: all cores) when
        the batch is large enough to pay for it."""
        from .parallel import encode_batch

        return encode_batch(self, list(texts), num_workers, options)

    def __getstate__(self) -> dict[str, Any]:
        state = {**self.__dict__, "_pool": None, "_cache": {}}
        del state["backends"], state["_run"]  # engines are rebuilt (and re-checked) on unpickle
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._engines(self.backend)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True,
               cleanup: bool = True, **_: Any) -> str:
        """Text of ``ids``: pieces joined, ``##`` glued, spaces before punctuation removed.

        Special tokens are skipped unless ``skip_special_tokens=False``, as HF ``tokenizers``
        decodes (``transformers`` keeps them by default: pass the flag to get its text)."""
        tokens = self.convert_ids_to_tokens(ids.tolist() if hasattr(ids, "tolist") else list(ids))
        if skip_special_tokens:
            special = set(self.special_tokens)
            tokens = [t for t in tokens if t not in special]
        return formats.join_wordpieces(tokens, self.prefix, cleanup)

    def batch_decode(self, sequences: Sequence[Sequence[int]], **options: Any) -> list[str]:
        """:meth:`decode` of each sequence (rows of a ``(B, S)`` tensor included)."""
        return [self.decode(s, **options) for s in sequences]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> Any:
        """Token strings of ``ids`` (one string for one int)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            return self._token(ids)
        return [self._token(int(i)) for i in ids]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> Any:
        """Ids of ``tokens``; unknown ones map to ``unk_token_id``."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def _token(self, i: int) -> str:
        tok = self.inv_vocab.get(i)
        if tok is None:
            raise InputError(f"token id {i!r} is not in the vocabulary (ids 0.."
                             f"{self.vocab_size - 1}); decode only ids this tokenizer produced")
        return tok

    def __call__(
        self, texts: str | Sequence[str], text_pairs: str | Sequence[str] | None = None, *,
        padding: bool | str = False, truncation: bool | str | None = None,
        max_length: int | None = None, return_tensors: str | None = None,
        add_special_tokens: bool = True, return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None, return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False, padding_side: str = "right",
        pad_to_multiple_of: int | None = None,
    ) -> dict[str, Any]:
        """Encode a text, a batch, or a batch of pairs, like a ``transformers`` tokenizer.

        The defaults are ``transformers``' and HF ``tokenizers``': no padding, no truncation,
        lists (a flat list for a single text). Returns a dict with ``input_ids``,
        ``token_type_ids`` and ``attention_mask`` (plus ``offset_mapping`` /
        ``special_tokens_mask`` when asked); ``return_tensors="pt"`` gives ``torch.long``
        tensors of shape ``(B, S)``. ``padding=True`` pads to the longest, ``"max_length"`` to
        ``max_length``; ``truncation=True`` cuts to ``max_length`` (default
        ``model_max_length``).
        """
        single = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else list(texts)
        pairs: list[str | None]
        if text_pairs is None:
            pairs = [None] * len(batch)
        else:
            pairs = [text_pairs] if isinstance(text_pairs, str) else list(text_pairs)
            if len(pairs) != len(batch):
                raise InputError(f"text_pairs has {len(pairs)} items for {len(batch)} texts; "
                                 "pass one pair per text")
        bad = next((t for t in [*batch, *pairs] if t is not None and not isinstance(t, str)), 0)
        if bad != 0:
            raise InputError(f"expected str texts, got {bad!r}; pass a str or a list of str")
        encs = [self.encode_full(t, p, add_special_tokens=add_special_tokens,
                                 truncation=truncation or False, max_length=max_length)
                for t, p in zip(batch, pairs, strict=True)]
        strategy = padding_strategy(padding)
        if strategy != "do_not_pad":
            if padding_side not in ("right", "left"):
                raise InputError(f"padding_side={padding_side!r}; use 'right' or 'left'")
            if strategy == "max_length":
                length = self.model_max_length if max_length is None else max_length
            else:
                length = max(len(e) for e in encs) if encs else 0
            if pad_to_multiple_of:
                length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
            for e in encs:
                e.pad(length, self.pad_token_id, self.pad_token, padding_side)
        keys: tuple[str, ...] = ("input_ids",)
        keys += ("token_type_ids",) * (return_token_type_ids is not False)
        keys += ("attention_mask",) * (return_attention_mask is not False)
        keys += ("offset_mapping",) * return_offsets_mapping
        keys += ("special_tokens_mask",) * return_special_tokens_mask
        return to_batch(encs, keys, return_tensors, single)

    # -- files ------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> list[str]:
        """Write ``vocab.txt``, ``tokenizer_config.json``, ``special_tokens_map.json`` and
        ``tokenizer.json`` (readable by ``transformers`` and HF ``tokenizers``)."""
        return formats.save_wordpiece(self, Path(directory))

    @classmethod
    def load(cls, directory: str | os.PathLike[str], **options: Any) -> WordPiece:
        """Read ``vocab.txt`` (+ ``tokenizer_config.json``) or a WordPiece ``tokenizer.json``."""
        return formats.load_wordpiece(cls, Path(directory), **options)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> WordPiece:
        """Read one ``vocab.txt`` or ``tokenizer.json`` file."""
        return formats.load_wordpiece_file(cls, Path(path), **options)

    # -- training ---------------------------------------------------------------------------
    @classmethod
    def trained(cls, texts: Iterable[str], vocab_size: int, **options: Any) -> WordPiece:
        """A new tokenizer learned from ``texts`` (see :meth:`train`)."""
        from .wordpiece_train import train_wordpiece

        return train_wordpiece(cls, texts, vocab_size, **options)

    def train(self, texts: Iterable[str], vocab_size: int, **options: Any) -> WordPiece:
        """Learn a vocabulary of ``vocab_size`` from ``texts`` with this tokenizer's settings;
        returns a new tokenizer (the original is unchanged)."""
        opts = {**self.options(), **options}
        return type(self).trained(texts, vocab_size, **opts)

    @classmethod
    def example(cls) -> WordPiece:
        """A small tokenizer trained on a few sentences, for the contract checks."""
        texts = ["Hello world! zoo tokenizers: 12 animals, one registry.",
                 "spaces and lines, tabs\tand more words for the tokenizer"] * 4
        return cls.trained(texts, vocab_size=120)

    def bad_inputs(self) -> list[Any]:
        """Texts ``encode`` refuses: anything but a str."""
        return [b"bytes, not text", 42, None, ["a list", "of texts"]]


def _typed(enc: Encoding, type_id: int) -> Encoding:
    enc.type_ids = [type_id] * len(enc)
    return enc


def _concat(parts: list[Encoding]) -> Encoding:
    out = Encoding()
    for p in parts:
        for name in ("ids", "tokens", "offsets", "type_ids", "special_tokens_mask",
                     "attention_mask"):
            getattr(out, name).extend(getattr(p, name))
        out.overflowing.extend(p.overflowing)
    return out
