"""Applying BPE merges inside one pre-token, never in quadratic time.

Sennrich et al. (2016), https://arxiv.org/abs/1508.07909: repeatedly join the adjacent pair
of parts whose join has the best (lowest) rank, leftmost first on ties, until no join is in
the vocabulary. Byte-level BPE ranks a join by its id (tiktoken); SentencePiece BPE by its piece
score, best first. Both give the same loop, written here once for ``bytes`` and ``str``.

Short pieces (nearly every pre-token of real text) use a flat list of pair ranks: a linear
scan per merge is quadratic, but on ten parts it beats any structure. Pieces longer than
:data:`LONG` switch to a heap of candidate pairs over a linked list of parts: each merge pops
the best pair, checks it is still current (lazy deletion), joins the two parts and pushes the
two pairs it creates, so a piece of n units costs O(n log n) — ``"a" * 1_000_000`` takes about
a second instead of hours.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import TypeVar

S = TypeVar("S", str, bytes)

LONG = 64
NONE = 1 << 62  # no rank: above any real one


def merge(piece: S, rank: Callable[[S], int | None], limit: int = NONE) -> list[S]:
    """The parts of ``piece`` after merging, lowest ``rank`` first (leftmost on ties).

    Args:
        piece: one pre-token (``bytes`` for byte-level BPE, ``str`` for SentencePiece).
        rank: a join's rank, an int >= 0 (``None``: not in the vocabulary), e.g. ``ranks.get``.
            Two joins may share a rank; the leftmost is merged first.
        limit: merge only into joins ranked below it.

    Example:
        >>> merge(b"aaab", {b"aa": 0, b"ab": 1, b"aab": 2}.get)
        [b'aa', b'ab']
    """
    if len(piece) > LONG:
        return _merge_heap(piece, rank, limit)
    parts = [piece[i:i + 1] for i in range(len(piece))]
    pair = [_rank(rank, piece[i:i + 2]) for i in range(len(piece) - 1)]
    while pair:
        best = min(pair)
        if best >= limit:
            break
        i = pair.index(best)  # leftmost of the lowest rank
        parts[i] += parts.pop(i + 1)
        del pair[i]
        if i > 0:
            pair[i - 1] = _rank(rank, parts[i - 1] + parts[i])
        if i < len(pair):
            pair[i] = _rank(rank, parts[i] + parts[i + 1])
    return parts


def _rank(rank: Callable[[S], int | None], join: S) -> int:
    r = rank(join)
    return NONE if r is None else r


def _merge_heap(piece: S, rank: Callable[[S], int | None], limit: int) -> list[S]:
    """:func:`merge` with a heap of candidate joins over a linked list of parts.

    A part is named by the offset where it starts; ``nxt[i]`` is the start of the part after
    the one at ``i`` (``-1`` once that part has been joined to its left neighbour) and
    ``now[i]`` the rank of the join of that part with the next. A heap key
    ``rank * width + i`` orders candidates by rank, then position; a popped key is acted on
    only if ``now[i]`` still holds its rank (then it is a current join of the lowest rank,
    leftmost, exactly the one the flat loop would merge), else it is dropped as stale.
    """
    n = len(piece)
    width = n + 1
    nxt = [*range(1, n + 1), -1]
    prv = list(range(-1, n))
    now = [NONE] * (n + 1)
    heap = []
    for i in range(n - 1):
        r = rank(piece[i:i + 2])
        if r is not None and r < limit:
            now[i] = r
            heap.append(r * width + i)
    heapify(heap)
    while heap:
        r, i = divmod(heappop(heap), width)
        if now[i] != r:
            continue
        m = nxt[i]
        e = nxt[m]
        nxt[i], nxt[m], now[m], now[i] = e, -1, NONE, NONE
        if e < n:
            prv[e] = i
            r = rank(piece[i:nxt[e]])
            if r is not None and r < limit:
                now[i] = r
                heappush(heap, r * width + i)
        p = prv[i]
        if p >= 0:
            r = rank(piece[p:e])
            if r is not None and r < limit:
                now[p] = r
                heappush(heap, r * width + p)
            else:
                now[p] = NONE
    out = []
    i = 0
    while i < n:
        out.append(piece[i:nxt[i]])
        i = nxt[i]
    return out
