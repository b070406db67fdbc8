"""FlashAttention-2 forward kernel in Triton (Dao 2023, arXiv:2307.08691, Algorithm 1).

One program owns a block of ``BLOCK_M`` queries of one (batch, head) and keeps it resident
while key/value blocks stream past: ``S = Q Kⱼᵀ`` (in log2 units), the online softmax
``m ← max(m, rowmax S)``, ``ℓ ← 2^{m_old − m} ℓ + rowsum 2^{S − m}``,
``Õ ← 2^{m_old − m} Õ + 2^{S − m} Vⱼ``, and at the end ``O = Õ / ℓ``, ``L = m + log₂ ℓ``
(stored in nats). Causal and windowed calls skip key blocks outside the window and mask
only the blocks that straddle its edges. Also the backward's preprocessing
``Δ = rowsum(dO ∘ O)`` (Algorithm 2, line 4).
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._triton_common import LOG2E, keep_mask, key_range, scores, seed_hash


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
def _fwd_inner(acc, m_i, l_i, q, k_base, v_base, kpm_base, sks, svs, lo, hi, offs_m, head_hash,
               seqlen_q, seqlen_k, slope, sm_scale, softcap, window_left, window_right,
               threshold, drop_scale, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
               BLOCK_N: tl.constexpr, MASKED: tl.constexpr, SOFTCAP: tl.constexpr,
               ALIBI: tl.constexpr, KPM: tl.constexpr, WIN_L: tl.constexpr,
               WIN_R: tl.constexpr, DROPOUT: tl.constexpr, PREC: tl.constexpr):
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        n_ok = offs_n < seqlen_k
        k = load_tile(k_base + offs_n[None, :] * sks + offs_d[:, None], n_ok[None, :],
                      d_ok[:, None], MASKED, BLOCK_D != HEAD_DIM)  # (D, BN)
        qk = tl.dot(q, k, input_precision=PREC)  # (BM, BN)
        kp = n_ok
        if KPM:
            kp = tl.load(kpm_base + offs_n, mask=n_ok, other=0) != 0
        s, _ = scores(qk, offs_m[:, None], offs_n[None, :], seqlen_q, seqlen_k, slope,
                      kp[None, :], sm_scale, softcap, window_left, window_right,
                      MASKED, SOFTCAP, ALIBI, KPM, WIN_L, WIN_R)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp2(s - m_safe[:, None])
        alpha = tl.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        if DROPOUT:
            keep = keep_mask(head_hash, offs_m[:, None], offs_n[None, :], threshold)
            p = tl.where(keep, p * drop_scale, 0.0)
        v = load_tile(v_base + offs_n[:, None] * svs + offs_d[None, :], n_ok[:, None],
                      d_ok[None, :], MASKED, BLOCK_D != HEAD_DIM)  # (BN, D)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PREC)
        m_i = m_new
    return acc, m_i, l_i


@triton.jit
def fwd_kernel(Q, K, V, OUT, LSE, SLOPES, PAD, CU_Q, CU_K,
               sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos, slb, slh, s_kpm,
               seqlen_q, seqlen_k, H, GROUPS, sm_scale, softcap, window_left, window_right,
               seed, threshold, drop_scale,
               HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr,
               BLOCK_N: tl.constexpr, VARLEN: tl.constexpr, EVEN_M: tl.constexpr,
               SOFTCAP: tl.constexpr, ALIBI: tl.constexpr, KPM: tl.constexpr,
               WIN_L: tl.constexpr, WIN_R: tl.constexpr, DROPOUT: tl.constexpr,
               PREC: tl.constexpr):
    pid_m = tl.num_programs(0) - 1 - tl.program_id(0)  # heaviest (causal) blocks first
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    hk = h // GROUPS
    q_start = (b * 0).to(tl.int64)
    k_start = (b * 0).to(tl.int64)
    if VARLEN:
        q_start = tl.load(CU_Q + b).to(tl.int64)
        seqlen_q = tl.load(CU_Q + b + 1) - q_start.to(tl.int32)
        k_start = tl.load(CU_K + b).to(tl.int64)
        seqlen_k = tl.load(CU_K + b + 1) - k_start.to(tl.int32)
    m0 = pid_m * BLOCK_M
    if m0 >= seqlen_q:
        return
    b64 = b.to(tl.int64)
    q_base = Q + b64 * sqb + h * sqh + q_start * sqs
    k_base = K + b64 * skb + hk * skh + k_start * sks
    v_base = V + b64 * svb + hk * svh + k_start * svs
    o_base = OUT + b64 * sob + h * soh + q_start * sos
    lse_base = LSE + b64 * slb + h * slh + q_start
    kpm_base = PAD + b64 * s_kpm
    slope = 0.0
    if ALIBI:
        slope = tl.load(SLOPES + bh)
    head_hash = seed_hash(seed, bh)

    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < seqlen_q
    d_ok = offs_d < HEAD_DIM
    q = load_tile(q_base + offs_m[:, None] * sqs + offs_d[None, :], m_ok[:, None],
                  d_ok[None, :], not EVEN_M, BLOCK_D != HEAD_DIM)  # (BM, D)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    lo, full_lo, full_hi, hi = key_range(m0, seqlen_q, seqlen_k, window_left, window_right,
                                         BLOCK_M, BLOCK_N, WIN_L, WIN_R)
    # edge blocks left of the window, the unmasked interior, then edge blocks on the right
    acc, m_i, l_i = _fwd_inner(
        acc, m_i, l_i, q, k_base, v_base, kpm_base, sks, svs, lo, tl.minimum(full_lo, hi),
        offs_m, head_hash, seqlen_q, seqlen_k, slope, sm_scale, softcap, window_left,
        window_right, threshold, drop_scale, HEAD_DIM, BLOCK_D, BLOCK_N, True,
        SOFTCAP, ALIBI, KPM, WIN_L, WIN_R, DROPOUT, PREC)
    acc, m_i, l_i = _fwd_inner(
        acc, m_i, l_i, q, k_base, v_base, kpm_base, sks, svs, full_lo, full_hi,
        offs_m, head_hash, seqlen_q, seqlen_k, slope, sm_scale, softcap, window_left,
        window_right, threshold, drop_scale, HEAD_DIM, BLOCK_D, BLOCK_N, False,
        SOFTCAP, ALIBI, KPM, WIN_L, WIN_R, DROPOUT, PREC)
    acc, m_i, l_i = _fwd_inner(
        acc, m_i, l_i, q, k_base, v_base, kpm_base, sks, svs, full_hi, hi,
        offs_m, head_hash, seqlen_q, seqlen_k, slope, sm_scale, softcap, window_left,
        window_right, threshold, drop_scale, HEAD_DIM, BLOCK_D, BLOCK_N, True,
        SOFTCAP, ALIBI, KPM, WIN_L, WIN_R, DROPOUT, PREC)

    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(empty, float("-inf"), (m_i + tl.log2(l_safe)) / LOG2E)
    o_ptrs = o_base + offs_m[:, None] * sos + offs_d[None, :]
    tl.store(o_ptrs, out.to(OUT.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
    tl.store(lse_base + offs_m, lse, mask=m_ok)


@triton.jit
def delta_kernel(OUT, DO, DELTA, sob, soh, sos, sdb, sdh, sds, slb, slh, CU_Q, seqlen_q, H,
                 HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr,
                 VARLEN: tl.constexpr):
    """Δ = rowsum(dO ∘ O) in float32, laid out like the log-sum-exp."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    q_start = (b * 0).to(tl.int64)
    if VARLEN:
        q_start = tl.load(CU_Q + b).to(tl.int64)
        seqlen_q = tl.load(CU_Q + b + 1) - q_start.to(tl.int32)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m < seqlen_q)[:, None] & (offs_d < HEAD_DIM)[None, :]
    b64 = b.to(tl.int64)
    o = tl.load(OUT + b64 * sob + h * soh + q_start * sos + offs_m[:, None] * sos
                + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)
    do = tl.load(DO + b64 * sdb + h * sdh + q_start * sds + offs_m[:, None] * sds
                 + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)
    tl.store(DELTA + b64 * slb + h * slh + q_start + offs_m, tl.sum(o * do, 1),
             mask=offs_m < seqlen_q)
