"""Triton helpers shared by the forward and backward kernels: scores, masks, dropout hash.

Scores are kept in base 2 (``s₂ = s · log₂e``) so that the softmax uses ``exp2``, as in
FlashAttention-2 (Dao 2023, §3.1); the log-sum-exp crosses the kernel boundary in nats.
Importing this module imports Triton: under ``TRITON_INTERPRET=1`` the kernels run in
Triton's CPU interpreter.
"""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E: tl.constexpr = tl.constexpr(1.4426950408889634)


@triton.jit
def mix32(x):
    """The 32-bit xor-shift-multiply finaliser on uint32 (same as the torch backend's)."""
    x = x ^ (x >> 16)
    x = x * 0x7FEB352D
    x = x ^ (x >> 15)
    x = x * 0x846CA68B
    return x ^ (x >> 16)


@triton.jit
def seed_hash(seed, bh):
    """Hash of (seed, batch·H + head): the start of every row hash of one head."""
    return mix32(seed.to(tl.uint32) ^ (bh.to(tl.uint32) * 0x9E3779B9))


@triton.jit
def keep_mask(head_hash, rows, cols, threshold):
    """Dropout keep-mask of scores (rows, cols), broadcast shapes: hash >> 8 >= threshold."""
    row = mix32(head_hash ^ rows.to(tl.uint32))
    return (mix32(row ^ (cols.to(tl.uint32) * 0x85EBCA6B)) >> 8) >= threshold.to(tl.uint32)


@triton.jit
def scores(qk, rows, cols, seqlen_q, seqlen_k, slope, kpm, sm_scale, softcap,
           window_left, window_right, MASKED: tl.constexpr, SOFTCAP: tl.constexpr,
           ALIBI: tl.constexpr, KPM: tl.constexpr, WIN_L: tl.constexpr, WIN_R: tl.constexpr):
    """Scores in log2 units from raw dot products, ``-inf`` where masked; and ``tanh``.

    ``rows``/``cols`` broadcast to ``qk``'s shape (either orientation); ``kpm`` likewise.
    Returns ``(s₂, t)`` with ``t = tanh(qk · sm_scale / softcap)`` (``qk`` without softcap).
    """
    if SOFTCAP:
        # tanh(z) = 1 - 2 / (e^{2z} + 1), with e^{2z} = 2^{2z·log2e}
        t = 1.0 - 2.0 / (tl.exp2(qk * (sm_scale / softcap * 2.0 * LOG2E)) + 1.0)
        s = t * (softcap * LOG2E)
    else:
        t = qk
        s = qk * (sm_scale * LOG2E)
    if ALIBI:
        dist = tl.abs(rows + (seqlen_k - seqlen_q) - cols).to(tl.float32)
        s = s - (slope * LOG2E) * dist
    if MASKED:
        diag = rows + (seqlen_k - seqlen_q)
        ok = cols < seqlen_k
        if WIN_R:
            ok = ok & (cols <= diag + window_right)
        if WIN_L:
            ok = ok & (cols >= diag - window_left)
        s = tl.where(ok, s, float("-inf"))
    if KPM:
        s = tl.where(kpm, s, float("-inf"))
    return s, t


@triton.jit
def key_range(m0, seqlen_q, seqlen_k, window_left, window_right, BLOCK_M: tl.constexpr,
              BLOCK_N: tl.constexpr, WIN_L: tl.constexpr, WIN_R: tl.constexpr):
    """Key blocks of queries [m0, m0 + BLOCK_M): ``lo ≤ full_lo ≤ full_hi ≤ hi``.

    Blocks in ``[full_lo, full_hi)`` need no positional mask; the rest is masked (block
    skipping: keys outside ``[lo, hi)`` are never read).
    """
    off = seqlen_k - seqlen_q
    lo = seqlen_k * 0
    hi = seqlen_k + 0
    full_lo = lo
    full_hi = seqlen_k // BLOCK_N * BLOCK_N
    if WIN_L:
        lo = tl.maximum(m0 + off - window_left, 0) // BLOCK_N * BLOCK_N
        first = tl.maximum(m0 + BLOCK_M - 1 + off - window_left, 0)
        full_lo = (first + BLOCK_N - 1) // BLOCK_N * BLOCK_N
    if WIN_R:
        hi = tl.minimum(tl.maximum(m0 + BLOCK_M + off + window_right, 0), seqlen_k)
        last = tl.maximum(m0 + off + window_right + 1, 0)
        full_hi = tl.minimum(full_hi, last // BLOCK_N * BLOCK_N)
    full_lo = tl.minimum(full_lo, (hi + BLOCK_N - 1) // BLOCK_N * BLOCK_N)
    full_hi = tl.maximum(full_hi, full_lo)
    return lo, full_lo, full_hi, hi


@triton.jit
def query_range(n0, seqlen_q, seqlen_k, window_left, window_right, BLOCK_M: tl.constexpr,
                BLOCK_N: tl.constexpr, WIN_L: tl.constexpr, WIN_R: tl.constexpr):
    """Query blocks that see keys [n0, n0 + BLOCK_N): ``lo ≤ full_lo ≤ full_hi ≤ hi``."""
    off = seqlen_k - seqlen_q
    lo = seqlen_q * 0
    hi = seqlen_q + 0
    full_lo = lo
    full_hi = (seqlen_q + BLOCK_M - 1) // BLOCK_M * BLOCK_M
    if WIN_R:  # i >= j - off - right
        lo = tl.maximum(n0 - off - window_right, 0) // BLOCK_M * BLOCK_M
        first = tl.maximum(n0 + BLOCK_N - 1 - off - window_right, 0)
        full_lo = (first + BLOCK_M - 1) // BLOCK_M * BLOCK_M
    if WIN_L:  # i <= j - off + left
        hi = tl.minimum(tl.maximum(n0 + BLOCK_N - off + window_left, 0), seqlen_q)
        last = tl.maximum(n0 - off + window_left + 1, 0)
        full_hi = tl.minimum(full_hi, last // BLOCK_M * BLOCK_M)
    if n0 + BLOCK_N > seqlen_k:  # a ragged key block is masked throughout
        full_hi = full_lo * 0
    full_lo = tl.minimum(full_lo, (hi + BLOCK_M - 1) // BLOCK_M * BLOCK_M)
    full_hi = tl.maximum(full_hi, full_lo)
    return lo, full_lo, full_hi, hi
