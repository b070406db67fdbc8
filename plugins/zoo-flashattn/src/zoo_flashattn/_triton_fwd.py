"""FlashAttention-2 forward kernel in Triton (Dao 2023, arXiv:2307.08691, Algorithm 1).

One program owns a block of ``BLOCK_M`` queries of one (batch, head) and keeps it resident
while key/value blocks stream past: ``S = Q Kⱼᵀ`` (in log2 units), the online softmax
``m ← max(m, rowmax S)``, ``ℓ ← 2^{m_old − m} ℓ + rowsum 2^{S − m}``,
``Õ ← 2^{m_old − m} Õ + 2^{S − m} Vⱼ``, and at the end ``O = Õ / ℓ``, ``L = m + log₂ ℓ``
(stored in nats). Causal and windowed calls skip key blocks outside the window and mask
only the blocks that straddle its edges. Also the backward's preprocessing
``Δ = rowsum(dO ∘ O)`` (Algorithm 2, line 4). Arguments: see :mod:`._triton_common`.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._triton_common import (
    LOG2E,
    attendable,
    head_base,
    head_constants,
    keep_mask,
    key_ranges,
    load_tile,
    prologue,
    scores,
)


@triton.jit
def fwd_kernel(Q, K, V, OUT, LSE, SLOPES, PAD, CU_Q, CU_K, sq, sk, sv, so, sl, s_kpm, dims, opt,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, F: tl.constexpr):
    b, h, m0, q_start, k_start, seqlen_q, seqlen_k = prologue(
        dims.heads, dims, CU_Q, CU_K, BLOCK_M, True, F)
    if m0 >= seqlen_q:
        return
    hk = h // dims.groups
    slope, head_hash = head_constants(SLOPES, b * dims.heads + h, opt, F)
    k_base = head_base(K, sk, b, hk, k_start)
    v_base = head_base(V, sv, b, hk, k_start)
    kpm_base = PAD + b.to(tl.int64) * s_kpm
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, F.block_d)
    m_ok = offs_m < seqlen_q
    d_ok = offs_d < F.head_dim
    PAD_D: tl.constexpr = F.block_d != F.head_dim
    q = load_tile(head_base(Q, sq, b, h, q_start) + offs_m[:, None] * sq[2] + offs_d[None, :],
                  m_ok[:, None], d_ok[None, :], not F.even_m, PAD_D)  # (BM, D)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, F.block_d], tl.float32)
    ranges = key_ranges(m0, seqlen_q, seqlen_k, opt, BLOCK_M, BLOCK_N, F)
    for part in tl.static_range(3):
        lo, hi, MASKED = ranges[part]
        for start_n in range(lo, hi, BLOCK_N):
            offs_n = start_n + tl.arange(0, BLOCK_N)
            n_ok = offs_n < seqlen_k
            k = load_tile(k_base + offs_n[None, :] * sk[2] + offs_d[:, None], n_ok[None, :],
                          d_ok[:, None], MASKED, PAD_D)  # (D, BN)
            qk = tl.dot(q, k, input_precision=F.precision)  # (BM, BN)
            kp = attendable(kpm_base, offs_n, n_ok, F)
            s, _ = scores(qk, offs_m[:, None], offs_n[None, :], kp[None, :], seqlen_q, seqlen_k,
                          slope, opt, MASKED, F)
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
            p = tl.exp2(s - m_safe[:, None])
            alpha = tl.exp2(m_i - m_safe)
            l_i = l_i * alpha + tl.sum(p, 1)
            if F.dropout:
                keep = keep_mask(head_hash, offs_m[:, None], offs_n[None, :], opt)
                p = tl.where(keep, p * opt.drop_scale, 0.0)
            v = load_tile(v_base + offs_n[:, None] * sv[2] + offs_d[None, :], n_ok[:, None],
                          d_ok[None, :], MASKED, PAD_D)  # (BN, D)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=F.precision)
            m_i = m_new

    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(empty, float("-inf"), (m_i + tl.log2(l_safe)) / LOG2E)
    o_ptrs = head_base(OUT, so, b, h, q_start) + offs_m[:, None] * so[2] + offs_d[None, :]
    tl.store(o_ptrs, out.to(OUT.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
    tl.store(head_base(LSE, sl, b, h, q_start) + offs_m, lse, mask=m_ok)


@triton.jit
def delta_kernel(OUT, DO, DELTA, CU_Q, so, sdo, sl, dims, BLOCK_M: tl.constexpr,
                 F: tl.constexpr):
    """Δ = rowsum(dO ∘ O) in float32, laid out like the log-sum-exp."""
    b, h, m0, q_start, _, seqlen_q, _ = prologue(dims.heads, dims, CU_Q, CU_Q, BLOCK_M, False, F)
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, F.block_d)
    mask = (offs_m < seqlen_q)[:, None] & (offs_d < F.head_dim)[None, :]
    o = tl.load(head_base(OUT, so, b, h, q_start) + offs_m[:, None] * so[2] + offs_d[None, :],
                mask=mask, other=0.0).to(tl.float32)
    do = tl.load(head_base(DO, sdo, b, h, q_start) + offs_m[:, None] * sdo[2]
                 + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)
    tl.store(head_base(DELTA, sl, b, h, q_start) + offs_m, tl.sum(o * do, 1),
             mask=offs_m < seqlen_q)
