"""FlashAttention-2 backward kernels in Triton (Dao 2023, arXiv:2307.08691, Algorithm 2).

Two passes, as in FlashAttention-2 §3.1, with ``P = 2^{S₂ − L₂}`` recomputed from the saved
log-sum-exp and ``Δ = rowsum(dO ∘ O)`` from the preprocessing kernel:

* ``dkdv_kernel``: one program owns a key/value block (resident) and streams the query
  blocks of every query head that shares it (GQA sums the group here, without atomics):
  ``dV += Pᵀ dO``, ``dP = dO Vᵀ``, ``dS = P ∘ (dP − Δ)``, ``dK += dSᵀ Q``;
* ``dq_kernel``: one program owns a query block and streams the key blocks: ``dQ += dS K``.

No program writes where another does, so the backward is deterministic by construction.
Softcapping multiplies ``dS`` by ``1 − tanh²``; dropout replays the forward's keep-mask.
Arguments: see :mod:`._triton_common`.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._triton_common import (
    attendable,
    head_base,
    head_constants,
    keep_mask,
    key_ranges,
    load_tile,
    prologue,
    query_ranges,
    scores,
)


@triton.jit
def dkdv_kernel(Q, K, V, DO, LSE2, DELTA, DK, DV, SLOPES, PAD, CU_Q, CU_K, sq, sk, sv, sdo,
                sdk, sdv, sl, s_kpm, dims, opt, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                F: tl.constexpr):
    b, hk, n0, q_start, k_start, seqlen_q, seqlen_k = prologue(
        dims.kv_heads, dims, CU_Q, CU_K, BLOCK_N, False, F)
    if n0 >= seqlen_k:
        return
    offs_n = n0 + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, F.block_d)
    n_ok = offs_n < seqlen_k
    d_ok = offs_d < F.head_dim
    PAD_D: tl.constexpr = F.block_d != F.head_dim
    k = load_tile(head_base(K, sk, b, hk, k_start) + offs_n[:, None] * sk[2] + offs_d[None, :],
                  n_ok[:, None], d_ok[None, :], True, PAD_D)  # (BN, D)
    v = load_tile(head_base(V, sv, b, hk, k_start) + offs_n[:, None] * sv[2] + offs_d[None, :],
                  n_ok[:, None], d_ok[None, :], True, PAD_D)  # (BN, D)
    kp = attendable(PAD + b.to(tl.int64) * s_kpm, offs_n, n_ok, F)
    dk = tl.zeros([BLOCK_N, F.block_d], tl.float32)
    dv = tl.zeros([BLOCK_N, F.block_d], tl.float32)
    ranges = query_ranges(n0, seqlen_q, seqlen_k, opt, BLOCK_M, BLOCK_N, F)
    for g in range(0, dims.groups):
        h = hk * dims.groups + g
        slope, head_hash = head_constants(SLOPES, b * dims.heads + h, opt, F)
        q_base = head_base(Q, sq, b, h, q_start)
        do_base = head_base(DO, sdo, b, h, q_start)
        lse_base = head_base(LSE2, sl, b, h, q_start)
        delta_base = head_base(DELTA, sl, b, h, q_start)
        for part in tl.static_range(3):
            lo, hi, MASKED = ranges[part]
            for start_m in range(lo, hi, BLOCK_M):
                offs_m = start_m + tl.arange(0, BLOCK_M)
                m_ok = offs_m < seqlen_q
                qT = load_tile(q_base + offs_m[None, :] * sq[2] + offs_d[:, None],
                               m_ok[None, :], d_ok[:, None], not F.even_m, PAD_D)  # (D, BM)
                do = load_tile(do_base + offs_m[:, None] * sdo[2] + offs_d[None, :],
                               m_ok[:, None], d_ok[None, :], not F.even_m, PAD_D)  # (BM, D)
                lse2 = tl.load(lse_base + offs_m, mask=m_ok, other=float("inf"))
                delta = tl.load(delta_base + offs_m, mask=m_ok, other=0.0)
                qkT = tl.dot(k, qT, input_precision=F.precision)  # (BN, BM)
                sT, tT = scores(qkT, offs_m[None, :], offs_n[:, None], kp[:, None], seqlen_q,
                                seqlen_k, slope, opt, MASKED, F)
                pT = tl.exp2(sT - lse2[None, :])
                dpT = tl.dot(v, tl.trans(do), input_precision=F.precision)  # (BN, BM)
                if F.dropout:
                    keep = keep_mask(head_hash, offs_m[None, :], offs_n[:, None], opt)
                    dv += tl.dot(tl.where(keep, pT * opt.drop_scale, 0.0).to(do.dtype), do,
                                 input_precision=F.precision)
                    dpT = tl.where(keep, dpT * opt.drop_scale, 0.0)
                else:
                    dv += tl.dot(pT.to(do.dtype), do, input_precision=F.precision)
                dsT = pT * (dpT - delta[None, :])
                if F.softcap:
                    dsT = dsT * (1.0 - tT * tT)
                dk += tl.dot(dsT.to(qT.dtype), tl.trans(qT), input_precision=F.precision)
    dk = dk * opt.sm_scale
    out_ok = n_ok[:, None] & d_ok[None, :]
    tl.store(head_base(DK, sdk, b, hk, k_start) + offs_n[:, None] * sdk[2] + offs_d[None, :],
             dk.to(DK.dtype.element_ty), mask=out_ok)
    tl.store(head_base(DV, sdv, b, hk, k_start) + offs_n[:, None] * sdv[2] + offs_d[None, :],
             dv.to(DV.dtype.element_ty), mask=out_ok)


@triton.jit
def dq_kernel(Q, K, V, DO, LSE2, DELTA, DQ, SLOPES, PAD, CU_Q, CU_K, sq, sk, sv, sdo, sdq, sl,
              s_kpm, dims, opt, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, F: tl.constexpr):
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
    do = load_tile(head_base(DO, sdo, b, h, q_start) + offs_m[:, None] * sdo[2]
                   + offs_d[None, :], m_ok[:, None], d_ok[None, :], not F.even_m, PAD_D)
    lse2 = tl.load(head_base(LSE2, sl, b, h, q_start) + offs_m, mask=m_ok, other=float("inf"))
    delta = tl.load(head_base(DELTA, sl, b, h, q_start) + offs_m, mask=m_ok, other=0.0)

    dq = tl.zeros([BLOCK_M, F.block_d], tl.float32)
    ranges = key_ranges(m0, seqlen_q, seqlen_k, opt, BLOCK_M, BLOCK_N, F)
    for part in tl.static_range(3):
        lo, hi, MASKED = ranges[part]
        for start_n in range(lo, hi, BLOCK_N):
            offs_n = start_n + tl.arange(0, BLOCK_N)
            n_ok = offs_n < seqlen_k
            kT = load_tile(k_base + offs_n[None, :] * sk[2] + offs_d[:, None], n_ok[None, :],
                           d_ok[:, None], MASKED, PAD_D)  # (D, BN)
            vT = load_tile(v_base + offs_n[None, :] * sv[2] + offs_d[:, None], n_ok[None, :],
                           d_ok[:, None], MASKED, PAD_D)  # (D, BN)
            qk = tl.dot(q, kT, input_precision=F.precision)  # (BM, BN)
            kp = attendable(kpm_base, offs_n, n_ok, F)
            s, t = scores(qk, offs_m[:, None], offs_n[None, :], kp[None, :], seqlen_q, seqlen_k,
                          slope, opt, MASKED, F)
            p = tl.exp2(s - lse2[:, None])
            dp = tl.dot(do, vT, input_precision=F.precision)  # (BM, BN)
            if F.dropout:
                keep = keep_mask(head_hash, offs_m[:, None], offs_n[None, :], opt)
                dp = tl.where(keep, dp * opt.drop_scale, 0.0)
            ds = p * (dp - delta[:, None])
            if F.softcap:
                ds = ds * (1.0 - t * t)
            dq += tl.dot(ds.to(kT.dtype), tl.trans(kT), input_precision=F.precision)
    dq = dq * opt.sm_scale
    tl.store(head_base(DQ, sdq, b, h, q_start) + offs_m[:, None] * sdq[2] + offs_d[None, :],
             dq.to(DQ.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
