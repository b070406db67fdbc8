"""Learning BPE merges with incremental pair counts.

Sennrich et al., "Neural Machine Translation of Rare Words with Subword Units" (2016),
https://arxiv.org/abs/1508.07909, algorithm 1: repeatedly merge the most frequent adjacent
pair of symbols. Words are counted once (a word seen n times weighs n), each pair keeps the
set of words it occurs in, and a merge only revisits those words, updating the counts of the
pairs it destroys and creates; a max-heap with lazy deletion finds the next best pair (only a
pair whose count grew gets a new entry: a shrunken pair's old entry is found stale when popped
and re-queued with its current count). Each merge therefore costs time in the words it
touches, not in the corpus.

A word is held as a ``str`` with one character per symbol (symbol ids mapped to code points in
order, the surrogates skipped), so that finding, counting and replacing a pair inside a word
are ``str`` methods: ``str.replace`` merges the leftmost non-overlapping occurrences, as BPE
does. A pair is its two-character string. A pair's word list may name a word twice or name a
word that has since lost the pair: such a visit finds no occurrence and moves on.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from operator import add

from zoo_core import InputError

_SURROGATES, _SKIP = 0xD800, 0x800  # ids from 0xD800 up take the code points after the gap
_MAX_ID = 0x10FFFF - _SKIP


def _char(symbol: int) -> str:
    if not 0 <= symbol <= _MAX_ID:
        raise InputError(f"symbol id {symbol!r} is outside 0..{_MAX_ID}; BPE ids are small ints")
    return chr(symbol + _SKIP if symbol >= _SURROGATES else symbol)


def _id(char: str) -> int:
    cp = ord(char)
    return cp - _SKIP if cp >= _SURROGATES else cp


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
    seqs: list[str] = []
    counts: list[int] = []
    pair_count: dict[str, int] = defaultdict(int)
    where: dict[str, list[int]] = defaultdict(list)
    for w, (symbols, n) in enumerate(words):
        # bytes (byte-level BPE) are ids 0..255 already: latin-1 maps them to the same chars
        s = symbols.decode("latin-1") if isinstance(symbols, bytes) else "".join(
            map(_char, symbols))
        seqs.append(s)
        counts.append(n)
        for p in map(add, s, s[1:]):
            pair_count[p] += n
            where[p].append(w)
    # A heap entry is (-count, pair): the highest count first, then the smallest pair (code
    # points are ordered like the ids).
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    _char(first_id + max(num_merges, 1) - 1)  # every new id has a character
    floor = max(min_frequency, 1)
    merges: list[tuple[int, int, int]] = []
    while heap and len(merges) < num_merges:
        negative, pair = heapq.heappop(heap)
        current = pair_count.get(pair, 0)
        if -negative != current:  # stale entry: re-queue with the current count
            if current > 0:
                heapq.heappush(heap, (-current, pair))
            continue
        if current < floor:
            break
        new = first_id + len(merges)
        a, b, merged = pair[0], pair[1], _char(new)
        merges.append((_id(a), _id(b), new))
        # pairs with the new symbol, all born in this merge: their words (a lost pair's old
        # heap entry goes stale)
        born: dict[str, list[int]] = defaultdict(list)
        for w in where.pop(pair, ()):
            old = seqs[w]
            head, hit, tail = old.partition(pair)
            if not hit:
                continue  # the word lost this pair to an earlier merge
            n = counts[w]
            if pair not in tail:  # the common case: only the two neighbours' pairs change
                seqs[w] = head + merged + tail
                if head:
                    left = head[-1]
                    pair_count[left + a] -= n
                    p = left + merged
                    pair_count[p] += n
                    born[p].append(w)
                if tail:
                    right = tail[0]
                    pair_count[b + right] -= n
                    p = merged + right
                    pair_count[p] += n
                    born[p].append(w)
                continue
            seqs[w] = out = old.replace(pair, merged)  # several occurrences: recount the word
            for p in map(add, old, old[1:]):
                pair_count[p] -= n
            for p in map(add, out, out[1:]):
                pair_count[p] += n
                if merged in p:
                    born[p].append(w)
        del pair_count[pair]
        where.update(born)
        for p in born:
            heapq.heappush(heap, (-pair_count[p], p))
    return merges
