"""Encoding a batch across processes.

Pure-Python encoding holds the GIL, so threads would not add cores; worker processes do.
Where ``fork`` is available the workers inherit the tokenizer (ranks and cache) without
copying it; elsewhere it is pickled once per worker. The pool lives as long as the tokenizer.
Small batches are encoded in place: starting work in other processes costs more than it saves.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import weakref
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from zoo_core import InputError

MIN_CHARS_PER_WORKER = 100_000
_WORKER_TOKENIZER: Any = None


def _init(tok: Any) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = tok


def _encode_chunk(args: tuple[list[str], dict[str, Any]]) -> list[list[int]]:
    texts, options = args
    return [_WORKER_TOKENIZER.encode(t, **options) for t in texts]


def _pool(tok: Any, workers: int) -> ProcessPoolExecutor:
    pool, size = tok._pool or (None, 0)
    if pool is None or size != workers:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context(method),
                                   initializer=_init, initargs=(tok,))
        weakref.finalize(tok, pool.shutdown, wait=False, cancel_futures=True)
        tok._pool = (pool, workers)
    return pool


def check_workers(num_workers: int | None) -> None:
    if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 1):
        raise InputError(f"num_workers={num_workers!r}; pass a positive int or None (all cores)")


def encode_batch(tok: Any, texts: list[str], num_workers: int | None,
                 options: dict[str, Any]) -> list[list[int]]:
    """``[tok.encode(t, **options) for t in texts]``, on up to ``num_workers`` processes."""
    check_workers(num_workers)
    total = sum(map(len, texts))
    workers = min(num_workers or os.cpu_count() or 1, max(1, total // MIN_CHARS_PER_WORKER),
                  len(texts))
    if workers <= 1:
        return [tok.encode(t, **options) for t in texts]
    chunks: list[list[str]] = []
    target, cur, size = total / (workers * 4), [], 0
    for t in texts:
        cur.append(t)
        size += len(t)
        if size >= target:
            chunks.append(cur)
            cur, size = [], 0
    if cur:
        chunks.append(cur)
    out: list[list[int]] = []
    for part in _pool(tok, workers).map(_encode_chunk, [(c, options) for c in chunks]):
        out += part
    return out
