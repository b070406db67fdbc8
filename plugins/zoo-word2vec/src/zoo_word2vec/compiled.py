"""The compiled CPU engine: the released tool's sequential SGD over a chunk, in one numba loop.

For every centre word ``w_i`` of a chunk and every context word ``w_j`` of its reduced window
(same sentence, ``0 < |i - j| <= b_i``), one SGD step on the loss of eq. 4 of arXiv:1310.4546
(negative sampling) or eq. 3 (hierarchical softmax), written out as in :mod:`.sgd`:

    skip-gram:  h = v_{w_j},                 predict w_i, then v_{w_j} += e
    CBOW:       h = (1/n) Σ_j v_{w_j} (or Σ), predict w_i, then every v_{w_j} += e (e/n for Σ)

where for each output row ``u`` with label ``y`` (the word and ``K`` noise words drawn from the
unigram^0.75 distribution by its alias tables, or the Huffman path's nodes with
``y = 1 - code``) ``g = α (y - σ(u·h))``,
``e += g u`` and ``u += g h``. Hierarchical softmax skips a node whose ``|u·h| >= 6`` (where
the tool's sigmoid table ends); a noise word equal to the centre word is skipped.

Each step sees the weights as the previous step left them (no batching), which is what the
C tool and gensim do; the Python side only subsamples and draws the reduced windows. The loop
releases the GIL (``nogil``), so worker threads train chunks in parallel on shared weights
without locks (Hogwild). Noise draws use the tool's linear congruential generator, seeded
from the worker's torch generator, so one worker is deterministic; a noise draw takes two
of its steps (a column of the alias tables, then 32 bits against that column's cut).

The same loop is written in C (``kernel.c``): where a C compiler works, :mod:`.native` builds
it once and every later process loads it in a millisecond; otherwise numba compiles this
module's loop on first use (cached on disk afterwards; a fresh process still pays numba's
import and set-up, about 0.4 s). Where neither can run, the trainer uses the batched torch
steps of :mod:`.sgd` instead.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import threading
from typing import Any

import numpy as np

import zoo_core as zoo

from . import native

MAX_EXP = 6.0
# σ(x) and −log σ(x) tabulated on [−6, 6), as the tool and gensim do: an exp and a log per
# scored row would cost more than its dot product. Index: int((x + 6) · 1000 / 12).
TABLE_SIZE = 1000
_GRID = (np.arange(TABLE_SIZE, dtype=np.float64) / TABLE_SIZE * 2 - 1) * MAX_EXP
SIGMOID = (1 / (1 + np.exp(-_GRID))).astype(np.float32)
_GRID_ENDS = np.append(_GRID, MAX_EXP)  # the loss interpolates between grid points
NEG_LOG_SIGMOID = np.log1p(np.exp(-_GRID_ENDS))
_SCALE = TABLE_SIZE / MAX_EXP / 2
_LCG_MUL, _LCG_ADD = 25214903917, 11  # the C tool's next_random
_MASK48 = (1 << 48) - 1


def available() -> bool:
    """Whether the compiled engine can run (the C kernel builds, or numba is installed)."""
    return native.kernel() is not None or importlib.util.find_spec("numba") is not None


def _train_chunk(syn0: np.ndarray, syn1neg: np.ndarray, syn1: np.ndarray, ids: np.ndarray,
                 sid: np.ndarray, windows: np.ndarray, alpha: float, sg: bool, hs: bool,
                 negative: int, cbow_mean: bool, noise_cut: np.ndarray,
                 noise_alias: np.ndarray, points: np.ndarray, codes: np.ndarray,
                 code_lengths: np.ndarray, seed: int, work: np.ndarray) -> tuple[float, int]:
    """Train one chunk in place; return (loss sum, predictions). ``work``: (2, D) scratch."""
    n, dim = ids.shape[0], syn0.shape[1]
    neu1, neu1e = work[0], work[1]
    alpha = np.float32(alpha)
    rnd = seed & _MASK48
    loss, preds = 0.0, 0
    for i in range(n):
        word = ids[i]
        lo, hi = max(0, i - windows[i]), min(n, i + windows[i] + 1)
        if sg:
            for j in range(lo, hi):
                if j == i or sid[j] != sid[i]:
                    continue
                ctx = ids[j]
                for k in range(dim):
                    neu1e[k] = 0.0
                step, rnd = _predict(syn0[ctx], neu1e, word, alpha, hs, negative, syn1neg,
                                     syn1, noise_cut, noise_alias, points, codes,
                                     code_lengths, rnd)
                loss += step
                preds += 1
                row = syn0[ctx]
                for k in range(dim):
                    row[k] += neu1e[k]
        else:
            count = 0
            for k in range(dim):
                neu1[k] = 0.0
                neu1e[k] = 0.0
            for j in range(lo, hi):
                if j == i or sid[j] != sid[i]:
                    continue
                row = syn0[ids[j]]
                for k in range(dim):
                    neu1[k] += row[k]
                count += 1
            if count == 0:
                continue
            inv = 1.0 / count
            if cbow_mean:
                for k in range(dim):
                    neu1[k] *= inv
            step, rnd = _predict(neu1, neu1e, word, alpha, hs, negative, syn1neg, syn1,
                                 noise_cut, noise_alias, points, codes, code_lengths, rnd)
            loss += step
            preds += 1
            if not cbow_mean:
                for k in range(dim):
                    neu1e[k] *= inv
            for j in range(lo, hi):
                if j == i or sid[j] != sid[i]:
                    continue
                row = syn0[ids[j]]
                for k in range(dim):
                    row[k] += neu1e[k]
    return loss, preds


def _predict(h: np.ndarray, neu1e: np.ndarray, word: int, alpha: float, hs: bool,
             negative: int, syn1neg: np.ndarray, syn1: np.ndarray, noise_cut: np.ndarray,
             noise_alias: np.ndarray, points: np.ndarray, codes: np.ndarray,
             code_lengths: np.ndarray, rnd: int) -> tuple[float, int]:
    """Score ``word`` from ``h``: update the output rows, accumulate ``e`` in ``neu1e``;
    return the loss and the noise generator's next state."""
    dim = h.shape[0]
    loss = 0.0
    if hs:
        for d in range(code_lengths[word]):
            u = syn1[points[word, d]]
            f = np.float32(0.0)
            for k in range(dim):
                f += h[k] * u[k]
            label = 1.0 - codes[word, d]
            loss += _neg_log_sigmoid(f if label > 0.5 else -f)
            if f <= -MAX_EXP or f >= MAX_EXP:
                continue
            g = np.float32((label - SIGMOID[int((f + MAX_EXP) * _SCALE)]) * alpha)
            for k in range(dim):
                neu1e[k] += g * u[k]
                u[k] += g * h[k]
    for d in range(negative + 1 if negative else 0):
        if d == 0:
            target, label = word, 1.0
        else:
            rnd = (rnd * _LCG_MUL + _LCG_ADD) & _MASK48  # a column, then 32 bits for its cut
            column = (rnd >> 16) % noise_cut.shape[0]
            rnd = (rnd * _LCG_MUL + _LCG_ADD) & _MASK48
            target = column if (rnd >> 16) < noise_cut[column] else noise_alias[column]
            label = 0.0
            if target == word:
                continue
        u = syn1neg[target]
        f = np.float32(0.0)
        for k in range(dim):
            f += h[k] * u[k]
        loss += _neg_log_sigmoid(f if label > 0.5 else -f)
        if f >= MAX_EXP:
            p = 1.0
        elif f <= -MAX_EXP:
            p = 0.0
        else:
            p = SIGMOID[int((f + MAX_EXP) * _SCALE)]
        g = np.float32((label - p) * alpha)
        for k in range(dim):
            neu1e[k] += g * u[k]
            u[k] += g * h[k]
    return loss, rnd


def _neg_log_sigmoid(x: float) -> float:
    """−log σ(x): interpolated in its table inside (−6, 6), exact (rarely needed) outside."""
    if -MAX_EXP < x < MAX_EXP:
        pos = (x + MAX_EXP) * _SCALE
        i = int(pos)
        lo = NEG_LOG_SIGMOID[i]
        return lo + (pos - i) * (NEG_LOG_SIGMOID[i + 1] - lo)  # type: ignore[no-any-return]
    return math.log1p(math.exp(-x)) if x > 0 else -x + math.log1p(math.exp(x))


_jit_lock = threading.Lock()
_jitted: list[Any] = []


def _numba_kernel() -> Any:
    """This module's loop compiled by numba (imported on first use only)."""
    global _neg_log_sigmoid, _predict
    with _jit_lock:
        if not _jitted:
            from numba import njit

            opts = {"nogil": True, "cache": True, "fastmath": True, "error_model": "numpy"}
            _neg_log_sigmoid = njit(inline="always", **opts)(_neg_log_sigmoid)
            _predict = njit(inline="always", **opts)(_predict)
            _jitted.append(njit(**opts)(_train_chunk))
    return _jitted[0]


def _ptr(a: np.ndarray, ctype: Any) -> Any:
    return a.ctypes.data_as(ctypes.POINTER(ctype))


def train_chunk(syn0: np.ndarray, syn1neg: np.ndarray | None, syn1: np.ndarray | None,
                ids: np.ndarray, sid: np.ndarray, windows: np.ndarray, alpha: float, *,
                sg: bool, hs: bool, negative: int, cbow_mean: bool,
                noise_cut: np.ndarray | None, noise_alias: np.ndarray | None,
                points: np.ndarray | None, codes: np.ndarray | None,
                code_lengths: np.ndarray | None, seed: int,
                work: np.ndarray, engine: str = "auto") -> tuple[float, int]:
    """Run the compiled loop over one chunk (arrays share memory with the model's weights).

    Args:
        syn0: (V, D) float32 input vectors; syn1neg (V, D) and syn1 (V-1, D) output weights.
        ids: (N,) int64 word ids after subsampling; sid (N,) their sentence numbers.
        windows: (N,) int64 reduced window of each centre word.
        alpha: learning rate of the chunk.
        noise_cut, noise_alias: (V,) int64 / int32 alias tables of the unigram^0.75
            distribution (:func:`.vocab.alias_table`); points/codes (V, L), code_lengths (V,)
            Huffman paths.
        seed: start of the noise generator.
        work: (2, D) float32 scratch owned by the calling thread.
        engine: ``"auto"`` (C where it builds, else numba), ``"c"`` or ``"numba"``.
    """
    empty_rows = np.zeros((1, syn0.shape[1]), dtype=syn0.dtype)
    empty_ids = np.zeros((1, 1), dtype=np.int64)
    args = (syn0, empty_rows if syn1neg is None else syn1neg,
            empty_rows if syn1 is None else syn1, ids, sid, windows, float(alpha), bool(sg),
            bool(hs), int(negative), bool(cbow_mean),
            np.zeros(1, dtype=np.int64) if noise_cut is None else noise_cut,
            np.zeros(1, dtype=np.int32) if noise_alias is None else noise_alias,
            empty_ids if points is None else points, empty_ids if codes is None else codes,
            np.zeros(1, dtype=np.int64) if code_lengths is None else code_lengths,
            int(seed) & _MASK48, work)
    fn = native.kernel() if engine != "numba" else None
    if fn is None:
        if engine == "c":
            raise zoo.ConfigError("engine='c': the word2vec C kernel could not be built (no "
                                  "working C compiler: set CC); use engine='auto'")
        return _numba_kernel()(*args)  # type: ignore[no-any-return]
    return _call_c(fn, *args)


def _call_c(fn: Any, syn0: np.ndarray, syn1neg: np.ndarray, syn1: np.ndarray, ids: np.ndarray,
            sid: np.ndarray, windows: np.ndarray, alpha: float, sg: bool, hs: bool,
            negative: int, cbow_mean: bool, noise_cut: np.ndarray, noise_alias: np.ndarray,
            points: np.ndarray, codes: np.ndarray, code_lengths: np.ndarray, seed: int,
            work: np.ndarray) -> tuple[float, int]:
    """The C kernel on the same arguments (C-contiguous arrays of the documented dtypes)."""
    arrays = (syn0, syn1neg, syn1, ids, sid, windows, noise_cut, noise_alias, points, codes,
              code_lengths, work)
    dtypes = (np.float32,) * 3 + (np.int64,) * 4 + (np.int32,) + (np.int64,) * 3 + \
        (np.float32,)
    names = ("syn0", "syn1neg", "syn1", "ids", "sid", "windows", "noise_cut", "noise_alias",
             "points", "codes", "code_lengths", "work")
    for name, a, t in zip(names, arrays, dtypes, strict=True):
        if a.dtype != t or not a.flags.c_contiguous:
            raise zoo.InputError(f"{name} is a {'' if a.flags.c_contiguous else 'strided '}"
                                 f"{a.dtype} array; the C kernel needs a C-contiguous "
                                 f"{np.dtype(t)} one (numpy.ascontiguousarray(x, {np.dtype(t)}))")
    preds = np.zeros(1, dtype=np.int64)
    f32, i64 = ctypes.c_float, ctypes.c_int64
    loss = fn(_ptr(syn0, f32), _ptr(syn1neg, f32), _ptr(syn1, f32), syn0.shape[1],
              _ptr(ids, i64), _ptr(sid, i64), _ptr(windows, i64), ids.shape[0], alpha,
              sg, hs, negative, cbow_mean, _ptr(noise_cut, i64),
              _ptr(noise_alias, ctypes.c_int32), noise_cut.shape[0], _ptr(points, i64),
              _ptr(codes, i64), _ptr(code_lengths, i64), points.shape[1],
              _ptr(SIGMOID, f32), _ptr(NEG_LOG_SIGMOID, ctypes.c_double), TABLE_SIZE,
              seed, _ptr(work, f32), _ptr(preds, i64))
    return float(loss), int(preds[0])
