"""Training a WordPiece vocabulary.

Schuster & Nakajima, "Japanese and Korean Voice Search" (2012) grow the vocabulary by
merging units; as in the BERT releases' tooling, the merges here are chosen by pair
frequency (Sennrich et al. 2016, algorithm 1) over words split into characters where every
non-initial character carries the ``##`` prefix. The vocabulary is the special tokens, the
character alphabet (plain and ``##``-prefixed) and the merged units, in that order; encoding
then uses WordPiece's greedy longest match, not the merges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from zoo_core import InputError

from .bert_pretok import BertNormalizer, BertPreTokenizer
from .merges import learn_merges

_SPECIAL_DEFAULTS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece(cls: Any, texts: Iterable[str], vocab_size: int, *,
                    min_frequency: int = 2, special_tokens: list[str] | None = None,
                    limit_alphabet: int | None = None, **options: Any) -> Any:
    """A ``cls`` tokenizer with a vocabulary of at most ``vocab_size`` learned from ``texts``.

    Args:
        texts: the training corpus (any iterable of strings).
        vocab_size: the size of the vocabulary, special tokens and alphabet included.
        min_frequency: the least count a pair needs to be merged.
        special_tokens: tokens placed first; defaults to ``[PAD] [UNK] [CLS] [SEP] [MASK]``.
        limit_alphabet: keep only the most frequent characters (the rest become ``[UNK]``).
        options: the tokenizer's constructor options (``lowercase`` …).
    """
    if isinstance(texts, str):
        raise InputError(f"texts must be an iterable of strings, got one str "
                         f"({texts[:40]!r}); wrap it in a list")
    prefix = options.get("continuing_subword_prefix", "##")
    normalizer = BertNormalizer(options.get("clean_text", True),
                                options.get("tokenize_chinese_chars", True),
                                options.get("strip_accents"), options.get("lowercase", True))
    pretok = BertPreTokenizer(normalizer)
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pretok.split(text))
    specials = list(special_tokens) if special_tokens is not None else [
        options.get(r, d) for r, d in zip(("pad_token", "unk_token", "cls_token", "sep_token",
                                           "mask_token"), _SPECIAL_DEFAULTS, strict=True)]
    chars: Counter[str] = Counter()
    for w, n in words.items():
        for c in w:
            chars[c] += n
    alphabet = sorted(c for c, _ in chars.most_common(limit_alphabet))
    kept = set(alphabet)
    units = list(dict.fromkeys([*specials, *alphabet, *(prefix + c for c in alphabet)]))
    if vocab_size < len(units):
        raise InputError(f"vocab_size={vocab_size!r} is below the {len(units)} special tokens "
                         "and alphabet characters (plain and prefixed) the corpus needs; raise "
                         f"it to at least {len(units)} or pass limit_alphabet=")
    index = {u: i for i, u in enumerate(units)}
    seqs = []
    for w, n in words.items():
        if all(c in kept for c in w):
            seqs.append(([index[w[0]], *(index[prefix + c] for c in w[1:])], n))
    merges = learn_merges(seqs, vocab_size - len(units), len(units), min_frequency)
    for a, b, _ in merges:
        units.append(units[a] + units[b][len(prefix):])
    vocab: dict[str, int] = {}
    for u in units:  # a merged unit can repeat an alphabet entry; keep the first id
        vocab.setdefault(u, len(vocab))
    roles = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"),
                     specials, strict=False))
    return cls(vocab, **(roles | options))
