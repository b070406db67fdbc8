"""Vocabulary of a word2vec model: streamed counting, pruning, Huffman tree, sampling tables.

Mikolov et al. 2013, "Distributed Representations of Words and Phrases and their
Compositionality" (arXiv:1310.4546):

* frequent-word subsampling (sec. 2.3): a word of corpus frequency ``f`` is kept with
  probability ``(sqrt(f / t) + 1) * t / f`` (the form the authors' released tool uses, with
  ``t = sample`` as a fraction of the retained corpus);
* negative samples (sec. 2.2) are drawn from the unigram distribution raised to ``3/4``;
* hierarchical softmax (sec. 2.1) walks a binary Huffman tree built over word counts, so
  frequent words get short codes.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from zoo_core import InputError


def check_sentence(sentence: object, index: int) -> Sequence[str]:
    """Refuse a sentence that is not a list/tuple of tokens, with the fix."""
    if isinstance(sentence, str):
        raise InputError(f"sentence {index} is a str ({sentence[:40]!r}); a corpus is an "
                         "iterable of token lists: pass text.split() (or LineSentences(path))")
    if not isinstance(sentence, (list, tuple)):
        raise InputError(f"sentence {index} is a {type(sentence).__name__} ({sentence!r:.60}); "
                         "a corpus is an iterable of lists of str tokens")
    return sentence


def count_words(
    sentences: Iterable[Sequence[str]], max_vocab_size: int | None = None,
) -> tuple[Counter[str], int, int]:
    """Count tokens in one streaming pass; return ``(counts, total_words, num_sentences)``.

    With ``max_vocab_size``, whenever the table outgrows it after a sentence, words seen
    fewer than ``min_reduce`` times are dropped and ``min_reduce`` (starting at 1) grows by
    one, as gensim does, so memory stays bounded on corpora too large for it.
    """
    counts: Counter[str] = Counter()
    total, n, min_reduce = 0, 0, 1
    for n, sentence in enumerate(sentences, 1):
        sentence = check_sentence(sentence, n - 1)
        counts.update(sentence)
        total += len(sentence)
        if max_vocab_size is not None and len(counts) > max_vocab_size:
            counts = Counter({w: c for w, c in counts.items() if c >= min_reduce})
            min_reduce += 1
    bad = [w for w in counts if not isinstance(w, str)]
    if bad:
        raise InputError(f"non-string token(s) {bad[:5]!r} in the corpus; tokens must be str "
                         "(convert with [str(t) for t in sentence])")
    return counts, total, n


@dataclass
class Vocab:
    """Words sorted by descending count (ties: the last seen first, as gensim) and counts."""

    words: list[str]
    counts: list[int]

    @classmethod
    def from_counts(cls, counts: Counter[str], min_count: int, max_final_vocab: int | None = None,
                    ) -> Vocab:
        if not counts:
            raise InputError("the corpus is empty: no token was seen; pass an iterable of "
                             "non-empty token lists")
        kept = [(w, c) for w, c in counts.items() if c >= min_count]
        if not kept:
            top = counts.most_common(1)[0]
            raise InputError(f"every word occurs fewer than min_count={min_count!r} times (the "
                             f"most frequent, {top[0]!r}, occurs {top[1]}); lower min_count or "
                             "give a larger corpus")
        # gensim's order: by count, ties in reverse first-seen order (its lexsort on
        # (-index, -count)), so that key_to_index and the Huffman codes agree with it
        kept = [wc for _, wc in sorted(enumerate(kept), key=lambda iw: (-iw[1][1], -iw[0]))]
        if max_final_vocab is not None:
            kept = kept[:max_final_vocab]
        return cls([w for w, _ in kept], [c for _, c in kept])

    def __len__(self) -> int:
        return len(self.words)


def keep_probabilities(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """Probability of keeping each word under subsampling (1 where ``sample`` is 0)."""
    counts = counts.double()
    if sample <= 0:
        return torch.ones_like(counts)
    total = float(counts.sum())
    threshold = sample * total if sample < 1.0 else float(sample)
    prob = (torch.sqrt(counts / threshold) + 1.0) * threshold / counts.clamp_min(1)
    return prob.clamp(max=1.0)


def unigram_cdf(counts: torch.Tensor, exponent: float) -> torch.Tensor:
    """Cumulative unigram^exponent distribution, normalised to end at 1 (float64)."""
    weights = counts.double().clamp_min(0) ** exponent
    # no counts at all: uniform (chosen on the device, without reading the sum back)
    weights = torch.where(weights.sum() > 0, weights, torch.ones_like(weights))
    cdf = torch.cumsum(weights, 0)
    return cdf / cdf[-1]


def noise_table(cdf: Tensor, size: int | None = None) -> Tensor:
    """A table of word ids whose uniform draws follow ``cdf`` (the released tool's trick).

    Slot ``i`` holds the word whose CDF interval contains ``(i + 0.5) / size``; the default
    size, 100 slots per word between 1e6 and 1e7, resolves probabilities down to ~1e-7.
    """
    size = size or int(min(10_000_000, max(1_000_000, 100 * cdf.numel())))
    # slots whose midpoint (i + 0.5) / size is <= cdf[w], then each word's share of them
    upto = torch.floor(cdf * size - 0.5).add_(1).clamp_(0, size).long()
    upto[-1] = size
    slots = torch.diff(upto, prepend=upto.new_zeros(1))
    return torch.repeat_interleave(torch.arange(cdf.numel(), dtype=torch.int32), slots)


ALIAS_ONE = 1 << 32  # an alias cut is a threshold on 32 uniform bits


def alias_table(cdf: Tensor) -> tuple[Tensor, Tensor]:
    """Walker's alias tables of the distribution ``cdf``: draws exact to 2**-32, and only 12
    bytes a word, so a draw's two reads stay in the core's cache where a large slot table
    (:func:`noise_table`) misses it on most draws.

    Draw: a column ``c`` uniform in ``[0, V)``, 32 uniform bits ``u``; the word is ``c`` if
    ``u < cut[c]``, else ``alias[c]``. Built by Vose's method ("A linear algorithm for
    generating random numbers with a given distribution", 1991): each column holds a word with
    less than the mean mass, topped up from one with more.

    Returns:
        cut: (V,) int64 thresholds in ``[0, 2**32]``; alias: (V,) int32 word ids.
    """
    cdf64 = cdf.double().cpu()
    mass = (torch.diff(cdf64, prepend=cdf64.new_zeros(1)) * cdf.numel()).tolist()
    alias = list(range(len(mass)))
    small = [i for i, q in enumerate(mass) if q < 1.0]
    large = [i for i, q in enumerate(mass) if q >= 1.0]
    while small and large:
        s, big = small.pop(), large[-1]
        alias[s] = big
        mass[big] -= 1.0 - mass[s]
        if mass[big] < 1.0:
            small.append(large.pop())
    for i in small + large:  # rounding leftovers: full columns
        mass[i] = 1.0
    cut = torch.tensor(mass, dtype=torch.float64).mul_(ALIAS_ONE).round_().long()
    return cut, torch.tensor(alias, dtype=torch.int32)


def huffman(counts: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Huffman codes of the words, as padded tensors.

    Returns:
        points: (V, L) int64 inner-node rows of ``syn1`` from the root down (0 where padded).
        codes: (V, L) int64 branch bits along that path (0 where padded).
        lengths: (V,) int64 code lengths.
    """
    v = len(counts)
    if v < 2:
        z = torch.zeros(v, 1, dtype=torch.long)
        return z, z.clone(), torch.zeros(v, dtype=torch.long)
    heap = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = [0] * (2 * v - 1)
    bit = [0] * (2 * v - 1)
    for inner in range(v, 2 * v - 1):
        c1, n1 = heapq.heappop(heap)
        c2, n2 = heapq.heappop(heap)
        parent[n1], parent[n2], bit[n2] = inner, inner, 1
        heapq.heappush(heap, (c1 + c2, inner))
    root = 2 * v - 2
    parent_t = torch.tensor(parent)
    bit_t = torch.tensor(bit)
    # walk every leaf up to the root at once; columns are filled leaf-side first
    node = torch.arange(v)
    up_points, up_codes = [], []
    alive = node != root
    while bool(alive.any()):
        up_codes.append(torch.where(alive, bit_t[node], 0))
        node = torch.where(alive, parent_t[node], node)
        up_points.append(torch.where(alive, node - v, -1))
        alive = node != root
    pts = torch.stack(up_points, 1)  # (V, L) leaf -> root
    cds = torch.stack(up_codes, 1)
    lengths = (pts >= 0).sum(1)
    # reverse each row's valid prefix so paths read root -> leaf
    depth = pts.shape[1]
    col = torch.arange(depth).expand(v, depth)
    src = (lengths[:, None] - 1 - col).clamp_min(0)
    valid = col < lengths[:, None]
    points = torch.where(valid, pts.gather(1, src), 0)
    codes = torch.where(valid, cds.gather(1, src), 0)
    return points, codes, lengths


def expected_code_length(counts: Sequence[int], lengths: torch.Tensor) -> float:
    """Count-weighted mean code length (Huffman codes minimise it)."""
    c = torch.tensor(counts, dtype=torch.float64)
    return float((c * lengths.double()).sum() / c.sum().clamp_min(1e-300))


def encode_words(words: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """UTF-8 table of the words: ``(bytes (N,) uint8, offsets (V + 1,) int64)``."""
    blobs = [w.encode("utf-8") for w in words]
    lengths = torch.tensor([len(b) for b in blobs], dtype=torch.long)
    offsets = torch.zeros(len(blobs) + 1, dtype=torch.long)
    torch.cumsum(lengths, 0, out=offsets[1:])
    data = bytearray(b"".join(blobs))
    table = torch.frombuffer(data, dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)
    return table.clone(), offsets


def decode_words(table: torch.Tensor, offsets: torch.Tensor) -> list[str]:
    """Inverse of :func:`encode_words`."""
    data = table.cpu().numpy().tobytes()
    off = offsets.tolist()
    return [data[a:b].decode("utf-8") for a, b in zip(off[:-1], off[1:], strict=True)]

