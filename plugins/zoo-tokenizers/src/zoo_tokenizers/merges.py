"""Learning BPE merges with incremental pair counts.

Sennrich et al., "Neural Machine Translation of Rare Words with Subword Units" (2016),
https://arxiv.org/abs/1508.07909, algorithm 1: repeatedly merge the most frequent adjacent
pair of symbols. Words are counted once (a word seen n times weighs n), each pair keeps the
set of words it occurs in, and a merge only revisits those words, updating the counts of the
pairs it destroys and creates; a max-heap with lazy deletion finds the next best pair. Each
merge therefore costs time in the words it touches, not in the corpus.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

Pair = tuple[int, int]


def _pairs(symbols: Sequence[int]) -> Counter[Pair]:
    return Counter(zip(symbols, symbols[1:], strict=False))


def _move(pair_count: dict[Pair, int], where: dict[Pair, set[int]], touched: dict[Pair, int],
          gone: Pair, born: Pair, n: int, w: int) -> None:
    """Word ``w`` (seen ``n`` times) loses one ``gone`` pair and gains one ``born`` pair.

    Only ``born`` needs a new heap entry: ``gone``'s entry now overstates its count, so it is
    found stale when popped and re-queued with the current count.
    """
    pair_count[gone] -= n
    pair_count[born] += n
    where[born].add(w)
    touched[born] = 1


def learn_merges(
    words: Iterable[tuple[Sequence[int], int]], num_merges: int, first_id: int,
    min_frequency: int = 2,
) -> list[tuple[int, int, int]]:
    """Learn up to ``num_merges`` merges over ``(symbols, count)`` words.

    Ties between equally frequent pairs go to the smallest ``(left, right)`` ids, so training
    is deterministic. Learning stops early when no pair occurs ``min_frequency`` times.

    Args:
        words: each distinct word as its initial symbol ids and how often it occurs.
        num_merges: most merges to learn.
        first_id: id of the first new symbol; merge ``k`` creates ``first_id + k``.
        min_frequency: least count a pair needs to be merged.

    Returns:
        ``(left, right, new)`` triples in the order learned.

    Example:
        >>> learn_merges([([0, 1, 2], 3), ([0, 1], 1)], 2, first_id=3)
        [(0, 1, 3), (3, 2, 4)]
    """
    seqs: list[list[int]] = []
    counts: list[int] = []
    pair_count: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for w, (symbols, n) in enumerate(words):
        seqs.append(list(symbols))
        counts.append(n)
        for p, k in _pairs(symbols).items():
            pair_count[p] += k * n
            where[p].add(w)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int, int]] = []
    while heap and len(merges) < num_merges:
        neg, pair = heapq.heappop(heap)
        current = pair_count.get(pair, 0)
        if -neg != current:  # stale entry: re-queue with the current count
            if current > 0:
                heapq.heappush(heap, (-current, pair))
            continue
        if current < max(min_frequency, 1):
            break
        new = first_id + len(merges)
        merges.append((pair[0], pair[1], new))
        touched: dict[Pair, int] = {}
        a, b = pair
        for w in where.pop(pair, ()):
            old = seqs[w]
            n, size = counts[w], len(old)
            out: list[int] = []
            i, left_done = 0, False
            while i < size:
                if old[i] != a or i + 1 == size or old[i + 1] != b:
                    out.append(old[i])
                    i += 1
                    continue
                # an occurrence at i: pairs around it change (the merged pair itself is dropped)
                if i and not left_done:
                    _move(pair_count, where, touched, (old[i - 1], a), (out[-1], new), n, w)
                left_done = False
                if i + 2 < size:
                    nxt = old[i + 2]
                    if nxt == a and i + 3 < size and old[i + 3] == b:  # next occurrence
                        _move(pair_count, where, touched, (b, a), (new, new), n, w)
                        left_done = True
                    else:
                        _move(pair_count, where, touched, (b, nxt), (new, nxt), n, w)
                out.append(new)
                i += 2
            if len(out) != size:
                seqs[w] = out
        pair_count.pop(pair, None)
        for p in touched:  # pairs born in this merge (a lost pair's old entry goes stale)
            c = pair_count.get(p, 0)
            if c > 0 and p != pair:
                heapq.heappush(heap, (-c, p))
    return merges
