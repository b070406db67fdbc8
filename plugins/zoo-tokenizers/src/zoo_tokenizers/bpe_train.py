"""Training a byte-level BPE vocabulary.

Sennrich et al. (2016), algorithm 1, on bytes (Radford et al. 2019, section 2.2): the corpus
is cut into pre-tokens by the tokenizer's regex, each distinct pre-token is counted once, and
merges of the most frequent adjacent pair are learned with incremental pair counts
(:mod:`zoo_tokenizers.merges`). The 256 single bytes take ranks 0..255 (byte order), merge
``k`` takes rank ``256 + k``, and special tokens follow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from zoo_core import InputError

from .merges import learn_merges
from .patterns import Splitter, resolve


def train_bpe(cls: Any, texts: Iterable[str], vocab_size: int, *, pattern: str = "gpt2",
              special_tokens: list[str] | tuple[str, ...] = (), min_frequency: int = 2,
              name: str = "bpe", trust_pattern: bool = False, backend: str | None = None) -> Any:
    """A ``cls`` tokenizer with ``vocab_size`` ids (bytes, merges and special tokens).

    Args:
        texts: the training corpus (any iterable of strings).
        vocab_size: ids in all: 256 bytes + merges + ``len(special_tokens)``.
        pattern: pre-tokenization regex or a built-in name.
        special_tokens: texts given the last ids.
        min_frequency: the least count a pair needs to be merged; learning may stop early.
        name: the tokenizer's name.
        trust_pattern: accept a regex that is not a known pattern (see :func:`resolve`).
        backend: the new tokenizer's engine (see :class:`~zoo_tokenizers.bpe.BPE`).
    """
    if isinstance(texts, str):
        raise InputError(f"texts must be an iterable of strings, got one str "
                         f"({texts[:40]!r}); wrap it in a list")
    specials = list(dict.fromkeys(special_tokens))
    floor = 256 + len(specials)
    if not isinstance(vocab_size, int) or vocab_size < floor:
        raise InputError(f"vocab_size={vocab_size!r} is below the byte alphabet (256) plus "
                         f"{len(specials)} special token(s); pass at least {floor}")
    pattern = resolve(pattern, trust_pattern)
    splitter = Splitter(pattern)
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(splitter.split(text))
    words = [(piece.encode("utf-8"), n) for piece, n in counts.items()]
    merges = learn_merges(words, vocab_size - floor, 256, min_frequency)
    ranks = {bytes([b]): b for b in range(256)}
    by_id = {b: bytes([b]) for b in range(256)}
    for a, b, new in merges:
        by_id[new] = by_id[a] + by_id[b]
        ranks.setdefault(by_id[new], new)
    first = 256 + len(merges)
    return cls(ranks, pattern=pattern, name=name, trust_pattern=trust_pattern,
               backend=backend,
               special_tokens={s: first + i for i, s in enumerate(specials)})
