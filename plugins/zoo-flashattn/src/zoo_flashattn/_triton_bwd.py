"""FlashAttention-2 backward kernels in Triton (Dao 2023, arXiv:2307.08691, Algorithm 2).

Two passes, as in FlashAttention-2 §3.1, with ``P = 2^{S₂ − L₂}`` recomputed from the saved
log-sum-exp and ``Δ = rowsum(dO ∘ O)`` from the preprocessing kernel:

* ``dkdv_kernel``: one program owns a key/value block (resident) and streams the query
  blocks of every query head that shares it (GQA sums the group here, without atomics):
  ``dV += Pᵀ dO``, ``dP = dO Vᵀ``, ``dS = P ∘ (dP − Δ)``, ``dK += dSᵀ Q``;
* ``dq_kernel``: one program owns a query block and streams the key blocks: ``dQ += dS K``.

No program writes where another does, so the backward is deterministic by construction.
Softcapping multiplies ``dS`` by ``1 − tanh²``; dropout replays the forward's keep-mask.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._triton_common import keep_mask, key_range, query_range, scores, seed_hash
from ._triton_fwd import load_tile


@triton.jit
def _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, sqs, sdos, lo, hi,
                offs_n, kp, head_hash, seqlen_q, seqlen_k, slope, sm_scale, softcap,
                window_left, window_right, threshold, drop_scale, HEAD_DIM: tl.constexpr,
                BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, MASKED: tl.constexpr,
                EVEN_M: tl.constexpr, SOFTCAP: tl.constexpr, ALIBI: tl.constexpr,
                KPM: tl.constexpr, WIN_L: tl.constexpr, WIN_R: tl.constexpr,
                DROPOUT: tl.constexpr, PREC: tl.constexpr):
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    for start_m in range(lo, hi, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        m_ok = offs_m < seqlen_q
        qT = load_tile(q_base + offs_m[None, :] * sqs + offs_d[:, None], m_ok[None, :],
                       d_ok[:, None], not EVEN_M, BLOCK_D != HEAD_DIM)  # (D, BM)
        do = load_tile(do_base + offs_m[:, None] * sdos + offs_d[None, :], m_ok[:, None],
                       d_ok[None, :], not EVEN_M, BLOCK_D != HEAD_DIM)  # (BM, D)
        lse2 = tl.load(lse_base + offs_m, mask=m_ok, other=float("inf"))
        delta = tl.load(delta_base + offs_m, mask=m_ok, other=0.0)
        qkT = tl.dot(k, qT, input_precision=PREC)  # (BN, BM)
        sT, tT = scores(qkT, offs_m[None, :], offs_n[:, None], seqlen_q, seqlen_k, slope,
                        kp[:, None], sm_scale, softcap, window_left, window_right,
                        MASKED, SOFTCAP, ALIBI, KPM, WIN_L, WIN_R)
        pT = tl.exp2(sT - lse2[None, :])
        dpT = tl.dot(v, tl.trans(do), input_precision=PREC)  # (BN, BM)
        if DROPOUT:
            keep = keep_mask(head_hash, offs_m[None, :], offs_n[:, None], threshold)
            dv += tl.dot(tl.where(keep, pT * drop_scale, 0.0).to(do.dtype), do,
                         input_precision=PREC)
            dpT = tl.where(keep, dpT * drop_scale, 0.0)
        else:
            dv += tl.dot(pT.to(do.dtype), do, input_precision=PREC)
        dsT = pT * (dpT - delta[None, :])
        if SOFTCAP:
            dsT = dsT * (1.0 - tT * tT)
        dk += tl.dot(dsT.to(qT.dtype), tl.trans(qT), input_precision=PREC)
    return dk, dv


@triton.jit
def dkdv_kernel(Q, K, V, DO, LSE2, DELTA, DK, DV, SLOPES, PAD, CU_Q, CU_K,
                sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sdob, sdoh, sdos,
                sdkb, sdkh, sdks, sdvb, sdvh, sdvs, slb, slh, s_kpm,
                seqlen_q, seqlen_k, H, HKV, GROUPS, sm_scale, softcap, window_left,
                window_right, seed, threshold, drop_scale,
                HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr,
                BLOCK_N: tl.constexpr, VARLEN: tl.constexpr, EVEN_M: tl.constexpr,
                SOFTCAP: tl.constexpr, ALIBI: tl.constexpr, KPM: tl.constexpr,
                WIN_L: tl.constexpr, WIN_R: tl.constexpr, DROPOUT: tl.constexpr,
                PREC: tl.constexpr):
    pid_n = tl.program_id(0)
    bhk = tl.program_id(1)
    b = bhk // HKV
    hk = bhk % HKV
    q_start = (b * 0).to(tl.int64)
    k_start = (b * 0).to(tl.int64)
    if VARLEN:
        q_start = tl.load(CU_Q + b).to(tl.int64)
        seqlen_q = tl.load(CU_Q + b + 1) - q_start.to(tl.int32)
        k_start = tl.load(CU_K + b).to(tl.int64)
        seqlen_k = tl.load(CU_K + b + 1) - k_start.to(tl.int32)
    n0 = pid_n * BLOCK_N
    if n0 >= seqlen_k:
        return
    b64 = b.to(tl.int64)
    offs_n = n0 + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    n_ok = offs_n < seqlen_k
    d_ok = offs_d < HEAD_DIM
    k = load_tile(K + b64 * skb + hk * skh + k_start * sks + offs_n[:, None] * sks
                  + offs_d[None, :], n_ok[:, None], d_ok[None, :], True, BLOCK_D != HEAD_DIM)
    v = load_tile(V + b64 * svb + hk * svh + k_start * svs + offs_n[:, None] * svs
                  + offs_d[None, :], n_ok[:, None], d_ok[None, :], True, BLOCK_D != HEAD_DIM)
    kp = n_ok
    if KPM:
        kp = tl.load(PAD + b64 * s_kpm + offs_n, mask=n_ok, other=0) != 0
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    lo, full_lo, full_hi, hi = query_range(n0, seqlen_q, seqlen_k, window_left, window_right,
                                           BLOCK_M, BLOCK_N, WIN_L, WIN_R)
    for g in range(0, GROUPS):
        h = hk * GROUPS + g
        bh = b * H + h
        q_base = Q + b64 * sqb + h * sqh + q_start * sqs
        do_base = DO + b64 * sdob + h * sdoh + q_start * sdos
        lse_base = LSE2 + b64 * slb + h * slh + q_start
        delta_base = DELTA + b64 * slb + h * slh + q_start
        slope = 0.0
        if ALIBI:
            slope = tl.load(SLOPES + bh)
        head_hash = seed_hash(seed, bh)
        dk, dv = _dkdv_inner(
            dk, dv, k, v, q_base, do_base, lse_base, delta_base, sqs, sdos, lo,
            tl.minimum(full_lo, hi), offs_n, kp, head_hash, seqlen_q, seqlen_k, slope,
            sm_scale, softcap, window_left, window_right, threshold, drop_scale, HEAD_DIM,
            BLOCK_D, BLOCK_M, True, EVEN_M, SOFTCAP, ALIBI, KPM, WIN_L, WIN_R, DROPOUT, PREC)
        dk, dv = _dkdv_inner(
            dk, dv, k, v, q_base, do_base, lse_base, delta_base, sqs, sdos, full_lo,
            full_hi, offs_n, kp, head_hash, seqlen_q, seqlen_k, slope,
            sm_scale, softcap, window_left, window_right, threshold, drop_scale, HEAD_DIM,
            BLOCK_D, BLOCK_M, False, EVEN_M, SOFTCAP, ALIBI, KPM, WIN_L, WIN_R, DROPOUT, PREC)
        dk, dv = _dkdv_inner(
            dk, dv, k, v, q_base, do_base, lse_base, delta_base, sqs, sdos, full_hi,
            hi, offs_n, kp, head_hash, seqlen_q, seqlen_k, slope,
            sm_scale, softcap, window_left, window_right, threshold, drop_scale, HEAD_DIM,
            BLOCK_D, BLOCK_M, True, EVEN_M, SOFTCAP, ALIBI, KPM, WIN_L, WIN_R, DROPOUT, PREC)
    dk = dk * sm_scale
    out_ok = n_ok[:, None] & d_ok[None, :]
    tl.store(DK + b64 * sdkb + hk * sdkh + k_start * sdks + offs_n[:, None] * sdks
             + offs_d[None, :], dk.to(DK.dtype.element_ty), mask=out_ok)
    tl.store(DV + b64 * sdvb + hk * sdvh + k_start * sdvs + offs_n[:, None] * sdvs
             + offs_d[None, :], dv.to(DV.dtype.element_ty), mask=out_ok)


@triton.jit
def _dq_inner(dq, q, do, lse2, delta, k_base, v_base, kpm_base, sks, svs, lo, hi, offs_m,
              head_hash, seqlen_q, seqlen_k, slope, sm_scale, softcap, window_left,
              window_right, threshold, drop_scale, HEAD_DIM: tl.constexpr,
              BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, MASKED: tl.constexpr,
              SOFTCAP: tl.constexpr, ALIBI: tl.constexpr, KPM: tl.constexpr,
              WIN_L: tl.constexpr, WIN_R: tl.constexpr, DROPOUT: tl.constexpr,
              PREC: tl.constexpr):
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        n_ok = offs_n < seqlen_k
        kT = load_tile(k_base + offs_n[None, :] * sks + offs_d[:, None], n_ok[None, :],
                       d_ok[:, None], MASKED, BLOCK_D != HEAD_DIM)  # (D, BN)
        vT = load_tile(v_base + offs_n[None, :] * svs + offs_d[:, None], n_ok[None, :],
                       d_ok[:, None], MASKED, BLOCK_D != HEAD_DIM)  # (D, BN)
        qk = tl.dot(q, kT, input_precision=PREC)  # (BM, BN)
        kp = n_ok
        if KPM:
            kp = tl.load(kpm_base + offs_n, mask=n_ok, other=0) != 0
        s, t = scores(qk, offs_m[:, None], offs_n[None, :], seqlen_q, seqlen_k, slope,
                      kp[None, :], sm_scale, softcap, window_left, window_right,
                      MASKED, SOFTCAP, ALIBI, KPM, WIN_L, WIN_R)
        p = tl.exp2(s - lse2[:, None])
        dp = tl.dot(do, vT, input_precision=PREC)  # (BM, BN)
        if DROPOUT:
            keep = keep_mask(head_hash, offs_m[:, None], offs_n[None, :], threshold)
            dp = tl.where(keep, dp * drop_scale, 0.0)
        ds = p * (dp - delta[:, None])
        if SOFTCAP:
            ds = ds * (1.0 - t * t)
        dq += tl.dot(ds.to(kT.dtype), tl.trans(kT), input_precision=PREC)
    return dq


@triton.jit
def dq_kernel(Q, K, V, DO, LSE2, DELTA, DQ, SLOPES, PAD, CU_Q, CU_K,
              sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sdob, sdoh, sdos,
              sdqb, sdqh, sdqs, slb, slh, s_kpm,
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
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < seqlen_q
    d_ok = offs_d < HEAD_DIM
    q = load_tile(Q + b64 * sqb + h * sqh + q_start * sqs + offs_m[:, None] * sqs
                  + offs_d[None, :], m_ok[:, None], d_ok[None, :], not EVEN_M,
                  BLOCK_D != HEAD_DIM)
    do = load_tile(DO + b64 * sdob + h * sdoh + q_start * sdos + offs_m[:, None] * sdos
                   + offs_d[None, :], m_ok[:, None], d_ok[None, :], not EVEN_M,
                   BLOCK_D != HEAD_DIM)
    lse2 = tl.load(LSE2 + b64 * slb + h * slh + q_start + offs_m, mask=m_ok,
                   other=float("inf"))
    delta = tl.load(DELTA + b64 * slb + h * slh + q_start + offs_m, mask=m_ok, other=0.0)
    k_base = K + b64 * skb + hk * skh + k_start * sks
    v_base = V + b64 * svb + hk * svh + k_start * svs
    kpm_base = PAD + b64 * s_kpm
    slope = 0.0
    if ALIBI:
        slope = tl.load(SLOPES + bh)
    head_hash = seed_hash(seed, bh)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    lo, full_lo, full_hi, hi = key_range(m0, seqlen_q, seqlen_k, window_left, window_right,
                                         BLOCK_M, BLOCK_N, WIN_L, WIN_R)
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, v_base, kpm_base, sks, svs, lo,
                   tl.minimum(full_lo, hi), offs_m, head_hash, seqlen_q, seqlen_k, slope,
                   sm_scale, softcap, window_left, window_right, threshold, drop_scale,
                   HEAD_DIM, BLOCK_D, BLOCK_N, True, SOFTCAP, ALIBI, KPM, WIN_L, WIN_R,
                   DROPOUT, PREC)
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, v_base, kpm_base, sks, svs, full_lo,
                   full_hi, offs_m, head_hash, seqlen_q, seqlen_k, slope,
                   sm_scale, softcap, window_left, window_right, threshold, drop_scale,
                   HEAD_DIM, BLOCK_D, BLOCK_N, False, SOFTCAP, ALIBI, KPM, WIN_L, WIN_R,
                   DROPOUT, PREC)
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, v_base, kpm_base, sks, svs, full_hi,
                   hi, offs_m, head_hash, seqlen_q, seqlen_k, slope,
                   sm_scale, softcap, window_left, window_right, threshold, drop_scale,
                   HEAD_DIM, BLOCK_D, BLOCK_N, True, SOFTCAP, ALIBI, KPM, WIN_L, WIN_R,
                   DROPOUT, PREC)
    dq = dq * sm_scale
    tl.store(DQ + b64 * sdqb + h * sdqh + q_start * sdqs + offs_m[:, None] * sdqs
             + offs_d[None, :], dq.to(DQ.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
