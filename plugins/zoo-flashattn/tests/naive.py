"""Attention written out from the formulas in float64, independent of zoo_flashattn's code.

Score ``s_ij = softcap·tanh(q_i·k_j·scale / softcap) − slope·|i + Sk − Sq − j|``; query ``i``
sees key ``j`` when ``i + Sk − Sq − left <= j <= i + Sk − Sq + right`` and the key is not
padding; ``P = softmax(s)``, rows without keys give zeros; dropout keeps ``(i, j)`` of
batch-head ``bh`` when the 32-bit hash chain ``mix(mix(mix(seed ^ bh·φ) ^ i) ^ j·c) >> 8`` is at
least ``⌊p·2²⁴⌋`` and scales the kept ones by ``1 / (1 − p)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _mix(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def keep_mask(seed: int, b0: int, b: int, h: int, sq: int, sk: int, p: float) -> torch.Tensor:
    """(B, H, Sq, Sk) bool dropout keep-mask."""
    bh = (np.arange(b0, b0 + b)[:, None] * h + np.arange(h)[None, :]).astype(np.uint32)
    base = _mix(np.uint32(seed) ^ (bh * np.uint32(0x9E3779B9)))[:, :, None, None]
    i = np.arange(sq, dtype=np.uint32)[:, None]
    j = np.arange(sk, dtype=np.uint32)[None, :]
    el = _mix(_mix(base ^ i) ^ (j * np.uint32(0x85EBCA6B)))
    return torch.from_numpy((el >> np.uint32(8)) >= np.uint32(int(p * 2**24)))


def attention(q, k, v, *, causal=False, sm_scale=None, key_padding_mask=None, window=None,
              softcap=None, alibi_slopes=None, dropout_p=0.0, seed=None, b0=0):
    """Dense (B, H, Sq, D) attention in float64; returns (out, lse)."""
    q, k, v = q.double(), k.double(), v.double()
    b, h, sq, d = q.shape
    sk = k.shape[2]
    k = k.repeat_interleave(h // k.shape[1], dim=1)
    v = v.repeat_interleave(h // v.shape[1], dim=1)
    scale = 1 / math.sqrt(d) if sm_scale is None else sm_scale
    s = torch.einsum("bhid,bhjd->bhij", q, k) * scale
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    i = torch.arange(sq)[:, None] + (sk - sq)
    j = torch.arange(sk)[None, :]
    if alibi_slopes is not None:
        slopes = alibi_slopes.double().expand(b, h)[:, :, None, None]
        s = s - slopes * (i - j).abs()
    left, right = window if window is not None else (-1, -1)
    if causal:
        right = 0
    ok = torch.ones(sq, sk, dtype=torch.bool)
    if right >= 0:
        ok &= j <= i + right
    if left >= 0:
        ok &= j >= i - left
    ok = ok.expand(b, h, sq, sk)
    if key_padding_mask is not None:
        ok = ok & key_padding_mask[:, None, None, :]
    s = s.masked_fill(~ok, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.where(ok, torch.exp(s - lse.nan_to_num(0, 0, 0)[..., None]), 0.0)
    if dropout_p > 0:
        p = p * keep_mask(seed, b0, b, h, sq, sk, dropout_p) / (1 - dropout_p)
    return p @ v, lse


def varlen(q, k, v, cu_q, cu_k, **options):
    """Packed (total, H, D) attention, one sequence at a time; returns (out, lse (H, total))."""
    outs, lses = [], []
    for n in range(len(cu_q) - 1):
        qs, ks = slice(cu_q[n], cu_q[n + 1]), slice(cu_k[n], cu_k[n + 1])
        dense = [x.transpose(0, 1)[None] for x in (q[qs], k[ks], v[ks])]
        o, lse = attention(*dense, b0=n, **options)
        outs.append(o[0].transpose(0, 1))
        lses.append(lse[0])
    return torch.cat(outs), torch.cat(lses, dim=1)
