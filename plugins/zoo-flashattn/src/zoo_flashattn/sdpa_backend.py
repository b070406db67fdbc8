"""The ``sdpa`` backend: delegation to ``torch.nn.functional.scaled_dot_product_attention``.

SDPA picks its own kernel (FlashAttention-2, memory-efficient, cuDNN, or the math fallback).
Plain and causal calls with ``Sq == Sk`` go through ``is_causal`` and keep the fused kernels;
a window, ALiBi, key padding or bottom-right causal alignment with ``Sq != Sk`` become an
explicit ``attn_mask`` (bool, or a float bias for ALiBi), which SDPA supports but which costs
(B, H, Sq, Sk) memory. SDPA returns no log-sum-exp, has no softcap, draws its own dropout mask
and takes no packed sequences, so those calls are refused. A caller's ``attn_mask`` (SDPA's
argument) is combined with these masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._spec import Call
from .torch_backend import allowed


def supports(call: Call) -> bool | str:
    """True, or why SDPA cannot run this call."""
    spec = call.spec
    if spec.return_lse:
        return "SDPA does not return the log-sum-exp (return_lse=True)"
    if spec.softcap > 0:
        return f"SDPA has no softcap (softcap={spec.softcap!r})"
    if spec.varlen:
        return "SDPA takes no packed sequences (cu_seqlens)"
    if spec.dropout_p > 0 and spec.seed is not None:
        return "SDPA draws its own dropout mask and cannot follow seed=; pass seed=None"
    return True


def _mask(call: Call) -> Tensor | None:
    """A bool (B|1, 1, Sq, Sk) mask, or a float bias with ALiBi; None when nothing is hidden."""
    spec, q, k = call.spec, call.q, call.k
    sq, sk = q.shape[2], k.shape[2]
    rows = torch.arange(sq, device=q.device).view(-1, 1)
    cols = torch.arange(sk, device=q.device).view(1, -1)
    mask = None
    if spec.window_left >= 0 or spec.window_right >= 0:  # causal included
        mask = allowed(rows, cols, sq, sk, spec)[None, None]  # (1, 1, Sq, Sk)
    if call.kpm is not None:
        kpm = call.kpm[:, None, None, :]  # (B, 1, 1, Sk)
        mask = kpm if mask is None else mask & kpm
    if call.slopes is None:
        return _with_user_mask(mask, call.mask, q.dtype)
    dist = (rows + (sk - sq) - cols).abs().to(torch.float32)
    bias = -call.slopes[:, :, None, None] * dist  # (B, H, Sq, Sk)
    if mask is not None:
        bias = bias.masked_fill(~mask, float("-inf"))
    return _with_user_mask(bias.to(q.dtype), call.mask, q.dtype)


def _with_user_mask(ours: Tensor | None, user: Tensor | None, dtype: torch.dtype
                    ) -> Tensor | None:
    """Our mask (bool) or bias (float) combined with the caller's ``attn_mask``."""
    if user is None or ours is None:
        return ours if user is None else user
    if ours.dtype == torch.bool and user.dtype == torch.bool:
        return ours & user
    def as_bias(m: Tensor) -> Tensor:
        if m.dtype != torch.bool:
            return m.to(dtype)
        return torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(~m, float("-inf"))
    return as_bias(ours) + as_bias(user)


def attention(call: Call) -> tuple[Tensor, None]:
    """Run a validated call through SDPA; returns (out, None)."""
    spec, q, k, v = call.spec, call.q, call.k, call.v
    sq, sk = q.shape[2], k.shape[2]
    plain_causal = spec.causal and sq == sk and call.kpm is None and call.slopes is None \
        and call.mask is None
    mask = None if plain_causal else _mask(call)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=spec.dropout_p, is_causal=plain_causal,
        scale=spec.sm_scale, enable_gqa=spec.groups > 1)
    if mask is not None and mask is not call.mask:
        # rows that may attend no key: zeros (SDPA's kernels may give NaN there)
        rows = torch.arange(sq, device=q.device).view(-1, 1)
        cols = torch.arange(sk, device=q.device).view(1, -1)
        ok = allowed(rows, cols, sq, sk, spec)[None, None]
        if call.kpm is not None:
            ok = ok & call.kpm[:, None, None, :]
        out = out.masked_fill(~ok.any(-1, keepdim=True), 0.0)
    return out, None
