"""Learning BPE merges with incremental pair counts.

Sennrich et al., "Neural Machine Translation of Rare Words with Subword Units" (2016),
https://arxiv.org/abs/1508.07909, algorithm 1: repeatedly merge the most frequent adjacent
pair of symbols. Words are counted once (a word seen n times weighs n), each pair keeps the
set of words it occurs in, and a merge only revisits those words, updating the counts of the
pairs it destroys and creates; a max-heap with lazy deletion finds the next best pair (only a
pair whose count grew gets a new entry: a shrunken pair's old entry is found stale when popped
and re-queued with its current count). Each merge therefore costs time in the words it
touches, not in the corpus.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

# A pair (a, b) is the int a << 32 | b: cheaper to hash than a tuple, and ordered like it. A heap
# entry is that key minus count << 64: the highest count first, then the smallest pair.
_SHIFT, _LOW = 32, (1 << 32) - 1
_KEY = (1 << 64) - 1


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
    pair_count: dict[int, int] = defaultdict(int)
    where: dict[int, set[int]] = defaultdict(set)
    for w, (symbols, n) in enumerate(words):
        seqs.append(list(symbols))
        counts.append(n)
        for p, k in Counter([x << _SHIFT | y for x, y in zip(symbols, symbols[1:],
                                                              strict=False)]).items():
            pair_count[p] += k * n
            where[p].add(w)
    heap = [p - (c << 64) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int, int]] = []
    while heap and len(merges) < num_merges:
        entry = heapq.heappop(heap)
        pair = entry & _KEY
        current = pair_count.get(pair, 0)
        if -(entry >> 64) != current:  # stale entry: re-queue with the current count
            if current > 0:
                heapq.heappush(heap, pair - (current << 64))
            continue
        if current < max(min_frequency, 1):
            break
        new = first_id + len(merges)
        a, b = pair >> _SHIFT, pair & _LOW
        merges.append((a, b, new))
        touched: dict[int, int] = {}
        new_left = new << _SHIFT
        for w in where.pop(pair, ()):
            old = seqs[w]
            try:
                i = old.index(a)  # the symbols before the first ``a`` stay as they are
            except ValueError:
                continue  # the word lost this pair to an earlier merge
            n, size = counts[w], len(old)
            out = old[:i]
            left_done = False
            while i < size:
                if old[i] != a or i + 1 == size or old[i + 1] != b:
                    out.append(old[i])
                    i += 1
                    continue
                # an occurrence at i: the pairs around it change (pair_count, where and
                # touched updated inline: a loss of ``gone``, a gain of ``born``)
                if i and not left_done:
                    born = out[-1] << _SHIFT | new
                    pair_count[old[i - 1] << _SHIFT | a] -= n
                    pair_count[born] += n
                    where[born].add(w)
                    touched[born] = 1
                left_done = False
                if i + 2 < size:
                    nxt = old[i + 2]
                    if nxt == a and i + 3 < size and old[i + 3] == b:  # next occurrence
                        gone, born = b << _SHIFT | a, new_left | new
                        left_done = True
                    else:
                        gone, born = b << _SHIFT | nxt, new_left | nxt
                    pair_count[gone] -= n
                    pair_count[born] += n
                    where[born].add(w)
                    touched[born] = 1
                out.append(new)
                i += 2
            if len(out) != size:
                seqs[w] = out
        pair_count.pop(pair, None)
        for p in touched:  # pairs born in this merge (a lost pair's old entry goes stale)
            c = pair_count.get(p, 0)
            if c > 0 and p != pair:
                heapq.heappush(heap, p - (c << 64))
    return merges
