"""Triton helpers shared by the forward and backward kernels: prologue, scores, masks, ranges.

Scores are kept in base 2 (``s₂ = s · log₂e``) so that the softmax uses ``exp2``, as in
FlashAttention-2 (Dao 2023, §3.1); the log-sum-exp crosses the kernel boundary in nats.

Every kernel takes the same three groups of arguments besides its tensors and strides (each
stride a ``(batch, head, row)`` tuple): ``dims`` (:class:`~.triton_backend.Dims`: sequence
lengths and head counts), ``opt`` (:class:`~.triton_backend.Scalars`: scale, softcap,
window, dropout) and the compile-time ``F`` (:class:`~.triton_backend.Features`: head dim,
precision and which options this compiled variant handles). Importing this module imports
Triton: under ``TRITON_INTERPRET=1`` the kernels run in Triton's CPU interpreter.
"""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E: tl.constexpr = tl.constexpr(1.4426950408889634)


@triton.jit
def prologue(heads, dims, CU_Q, CU_K, BLOCK: tl.constexpr, REVERSE: tl.constexpr,
             F: tl.constexpr):
    """The block this program owns, and where its batch's sequences lie.

    Grid: (blocks along a sequence, batch × ``heads``). Returns the batch ``b``, the head,
    the block's first row, where batch ``b``'s queries and keys start in their tensors (non-
    zero only in the packed form) and how many there are. ``REVERSE`` hands out the last
    blocks first (under a causal mask they are the heaviest).
    """
    pid = tl.program_id(0)
    if REVERSE:
        pid = tl.num_programs(0) - 1 - pid
    bh = tl.program_id(1)
    b = bh // heads
    q_start = (b * 0).to(tl.int64)
    k_start = (b * 0).to(tl.int64)
    seqlen_q = dims.seqlen_q
    seqlen_k = dims.seqlen_k
    if F.varlen:
        q_start = tl.load(CU_Q + b).to(tl.int64)
        seqlen_q = tl.load(CU_Q + b + 1) - q_start.to(tl.int32)
        k_start = tl.load(CU_K + b).to(tl.int64)
        seqlen_k = tl.load(CU_K + b + 1) - k_start.to(tl.int32)
    return b, bh % heads, pid * BLOCK, q_start, k_start, seqlen_q, seqlen_k


@triton.jit
def head_base(X, strides, b, h, start):
    """Pointer to row ``start`` of (batch ``b``, head ``h``) of ``X``."""
    return X + b.to(tl.int64) * strides[0] + h * strides[1] + start * strides[2]


@triton.jit
def head_constants(SLOPES, bh, opt, F: tl.constexpr):
    """ALiBi slope and dropout hash of query head ``bh`` (= batch · H + head)."""
    slope = 0.0
    if F.alibi:
        slope = tl.load(SLOPES + bh)
    return slope, seed_hash(opt.seed, bh)


@triton.jit
def load_tile(ptrs, r_ok, c_ok, CHECK_R: tl.constexpr, CHECK_C: tl.constexpr):
    """Load a 2-D tile, masking rows and/or columns only where needed (zeros outside)."""
    if CHECK_R and CHECK_C:
        x = tl.load(ptrs, mask=r_ok & c_ok, other=0.0)
    elif CHECK_R:
        x = tl.load(ptrs, mask=r_ok, other=0.0)
    elif CHECK_C:
        x = tl.load(ptrs, mask=c_ok, other=0.0)
    else:
        x = tl.load(ptrs)
    return x


@triton.jit
def attendable(kpm_base, offs_n, n_ok, F: tl.constexpr):
    """Keys that exist and, with a key-padding mask, are not padding."""
    ok = n_ok
    if F.kpm:
        ok = tl.load(kpm_base + offs_n, mask=n_ok, other=0) != 0
    return ok


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
def keep_mask(head_hash, rows, cols, opt):
    """Dropout keep-mask of scores (rows, cols), broadcast shapes: hash >> 8 >= threshold."""
    row = mix32(head_hash ^ rows.to(tl.uint32))
    return (mix32(row ^ (cols.to(tl.uint32) * 0x85EBCA6B)) >> 8) >= opt.threshold.to(tl.uint32)


@triton.jit
def scores(qk, rows, cols, kpm, seqlen_q, seqlen_k, slope, opt, MASKED: tl.constexpr,
           F: tl.constexpr):
    """Scores in log2 units from raw dot products, ``-inf`` where masked; and ``tanh``.

    ``rows``/``cols`` broadcast to ``qk``'s shape (either orientation); ``kpm`` likewise.
    ``MASKED`` applies the window and the key-sequence end (edge blocks only).
    Returns ``(s₂, t)`` with ``t = tanh(qk · sm_scale / softcap)`` (``qk`` without softcap).
    """
    if F.softcap:
        # tanh(z) = 1 - 2 / (e^{2z} + 1), with e^{2z} = 2^{2z·log2e}
        t = 1.0 - 2.0 / (tl.exp2(qk * (opt.sm_scale / opt.softcap * 2.0 * LOG2E)) + 1.0)
        s = t * (opt.softcap * LOG2E)
    else:
        t = qk
        s = qk * (opt.sm_scale * LOG2E)
    if F.alibi:
        dist = tl.abs(rows + (seqlen_k - seqlen_q) - cols).to(tl.float32)
        s = s - (slope * LOG2E) * dist
    if MASKED:
        diag = rows + (seqlen_k - seqlen_q)
        ok = cols < seqlen_k
        if F.window_right:
            ok = ok & (cols <= diag + opt.window_right)
        if F.window_left:
            ok = ok & (cols >= diag - opt.window_left)
        s = tl.where(ok, s, float("-inf"))
    if F.kpm:
        s = tl.where(kpm, s, float("-inf"))
    return s, t


@triton.jit
def key_ranges(m0, seqlen_q, seqlen_k, opt, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
               F: tl.constexpr):
    """Key blocks of queries [m0, m0 + BLOCK_M): a table of ``(lo, hi, MASKED)`` ranges.

    In visiting order: masked edge blocks left of the window, the unmasked interior, masked
    edge blocks on the right (block skipping: keys outside the window are never read).
    """
    off = seqlen_k - seqlen_q
    lo = seqlen_k * 0
    hi = seqlen_k + 0
    full_lo = lo
    full_hi = seqlen_k // BLOCK_N * BLOCK_N
    if F.window_left:
        lo = tl.maximum(m0 + off - opt.window_left, 0) // BLOCK_N * BLOCK_N
        first = tl.maximum(m0 + BLOCK_M - 1 + off - opt.window_left, 0)
        full_lo = (first + BLOCK_N - 1) // BLOCK_N * BLOCK_N
    if F.window_right:
        hi = tl.minimum(tl.maximum(m0 + BLOCK_M + off + opt.window_right, 0), seqlen_k)
        last = tl.maximum(m0 + off + opt.window_right + 1, 0)
        full_hi = tl.minimum(full_hi, last // BLOCK_N * BLOCK_N)
    return _table(lo, full_lo, full_hi, hi, BLOCK_N)


@triton.jit
def query_ranges(n0, seqlen_q, seqlen_k, opt, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                 F: tl.constexpr):
    """Query blocks that see keys [n0, n0 + BLOCK_N); the table as in :func:`key_ranges`."""
    off = seqlen_k - seqlen_q
    lo = seqlen_q * 0
    hi = seqlen_q + 0
    full_lo = lo
    full_hi = (seqlen_q + BLOCK_M - 1) // BLOCK_M * BLOCK_M
    if F.window_right:  # i >= j - off - right
        lo = tl.maximum(n0 - off - opt.window_right, 0) // BLOCK_M * BLOCK_M
        first = tl.maximum(n0 + BLOCK_N - 1 - off - opt.window_right, 0)
        full_lo = (first + BLOCK_M - 1) // BLOCK_M * BLOCK_M
    if F.window_left:  # i <= j - off + left
        hi = tl.minimum(tl.maximum(n0 + BLOCK_N - off + opt.window_left, 0), seqlen_q)
        last = tl.maximum(n0 - off + opt.window_left + 1, 0)
        full_hi = tl.minimum(full_hi, last // BLOCK_M * BLOCK_M)
    if n0 + BLOCK_N > seqlen_k:  # a ragged key block is masked throughout
        full_hi = full_lo * 0
    return _table(lo, full_lo, full_hi, hi, BLOCK_M)


@triton.jit
def _table(lo, full_lo, full_hi, hi, BLOCK: tl.constexpr):
    """``lo ≤ full_lo ≤ full_hi`` with the interior clipped to the last block: three ranges."""
    full_lo = tl.minimum(full_lo, (hi + BLOCK - 1) // BLOCK * BLOCK)
    full_hi = tl.maximum(full_hi, full_lo)
    return ((lo, tl.minimum(full_lo, hi), True), (full_lo, full_hi, False),
            (full_hi, hi, True))
