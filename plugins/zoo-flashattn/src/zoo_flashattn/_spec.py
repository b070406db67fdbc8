"""Validation of an attention call and its normalised description, shared by every backend.

Conventions (those of FlashAttention-2, Dao 2023, arXiv:2307.08691):

* dense tensors are (B, H, S, D); the varlen form packs the sequences of a batch along the
  first axis, (total, H, D), with ``cu_seqlens`` (B + 1,) the cumulative lengths;
* query ``i`` may attend key ``j`` when ``i + Sk - Sq - left <= j <= i + Sk - Sq + right``
  (the window aligned to the bottom-right corner of the score matrix, so that the last query
  sees the last key; ``-1`` leaves a side unbounded; ``causal`` means ``right = 0``);
* the score is ``s = softcap · tanh(q·k · sm_scale / softcap)`` (plain ``q·k · sm_scale``
  without softcap), plus the ALiBi bias ``-slope_h · |i + Sk - Sq - j|`` (Press et al. 2022);
* a query that may attend no key gets a zero output and a log-sum-exp of ``-inf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

import zoo_core as zoo
from zoo_core import InputError

MAX_HEAD_DIM = 256
_SEED_MOD = 2**31


@dataclass(frozen=True)
class Spec:
    """One attention call, validated; the tensors it needs travel beside it."""

    batch: int
    heads: int
    kv_heads: int
    head_dim: int
    max_seqlen_q: int
    max_seqlen_k: int
    sm_scale: float
    window_left: int  # -1: unbounded
    window_right: int  # -1: unbounded
    softcap: float  # 0.0: off
    dropout_p: float
    seed: int | None  # in [0, 2**31); None: drawn from torch's generator when run
    varlen: bool
    return_lse: bool

    @property
    def groups(self) -> int:
        """Query heads per key/value head (GQA; 1 for plain multi-head attention)."""
        return self.heads // self.kv_heads

    @property
    def causal(self) -> bool:
        return self.window_left == -1 and self.window_right == 0


@dataclass(frozen=True)
class Call:
    """A validated call: the spec plus its tensors, normalised."""

    q: Tensor
    k: Tensor
    v: Tensor
    spec: Spec
    slopes: Tensor | None  # (B, H) float32
    kpm: Tensor | None  # (B, Sk) bool, True = attend
    cu_q: Tensor | None  # (B + 1,) int32
    cu_k: Tensor | None
    mask: Tensor | None = None  # SDPA's attn_mask: bool (True = attend) or float, added


def _window(window: Any, causal: bool) -> tuple[int, int]:
    if window is None:
        left, right = -1, -1
    else:
        ok = isinstance(window, (tuple, list)) and len(window) == 2 and all(
            isinstance(w, int) and not isinstance(w, bool) for w in window)
        if not ok:
            raise InputError(f"window={window!r} must be a pair of ints (left, right); "
                             "use -1 for an unbounded side, e.g. window=(256, 0)")
        left, right = window
        if left < -1 or right < -1:
            raise InputError(f"window={window!r}: values must be >= -1 (-1 = unbounded), "
                             "e.g. window=(128, 0) for a causal sliding window of 129 keys")
    if causal:
        right = 0
    return left, right


def _cu_seqlens(cu: Any, name: str, total: int, device: torch.device) -> tuple[Tensor, int]:
    if not isinstance(cu, Tensor) or cu.dim() != 1 or cu.numel() < 2 \
            or cu.dtype not in (torch.int32, torch.int64):
        raise InputError(f"{name} must be a 1-D int32 tensor of B + 1 cumulative lengths starting "
                         f"at 0, got {cu!r}")
    vals = cu.tolist()
    steps = [b - a for a, b in zip(vals, vals[1:], strict=False)]
    if vals[0] != 0 or min(steps) < 0:
        raise InputError(f"{name}={vals!r} must start at 0 and never decrease (cumulative sequence "
                         "lengths, e.g. [0, 5, 12])")
    if vals[-1] != total:
        raise InputError(f"{name}[-1]={vals[-1]!r} does not match the packed length {total}; "
                         "the last entry must be the total number of tokens")
    return cu.to(device=device, dtype=torch.int32).contiguous(), max(steps)


def validate(q: Any, k: Any, v: Any, *, causal: bool = False, sm_scale: float | None = None,
             key_padding_mask: Tensor | None = None, window: Any = None,
             softcap: float | None = None, alibi_slopes: Tensor | None = None,
             dropout_p: float = 0.0, seed: int | None = None, return_lse: bool = False,
             cu_seqlens_q: Tensor | None = None, cu_seqlens_k: Tensor | None = None,
             max_seqlen_q: int | None = None, max_seqlen_k: int | None = None,
             attn_mask: Tensor | None = None) -> Call:
    """Check a call's arguments and normalise them; raise ``zoo.InputError`` naming a bad value."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        zoo.checks.tensor(t, name, dtype="float", fix="attention runs on float16, bfloat16 or "
                          "float32 tensors: convert with .float()")
    if not (q.dtype == k.dtype == v.dtype):
        raise InputError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}; "
                         "cast them to one")
    if not (q.device == k.device == v.device):
        raise InputError(f"q, k, v are on different devices: {q.device}, {k.device}, {v.device}")
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    if varlen and (cu_seqlens_q is None or cu_seqlens_k is None):
        raise InputError("the varlen form needs both cu_seqlens_q and cu_seqlens_k")
    want = 3 if varlen else 4
    layout = "(total, H, D) with cu_seqlens" if varlen else "(B, H, S, D)"
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != want:
            raise InputError(f"{name} has shape {tuple(t.shape)}; expected {layout}")
    if k.shape != v.shape:
        raise InputError(f"k shape {tuple(k.shape)} != v shape {tuple(v.shape)}; they must match")
    d = q.shape[-1]
    if k.shape[-1] != d:
        raise InputError(f"head dims differ: q has {d}, k/v have {k.shape[-1]}")
    if not 1 <= d <= MAX_HEAD_DIM:
        raise InputError(f"head dim {d!r} is not supported; valid: 1..{MAX_HEAD_DIM}. Split wider "
                         "heads or use more heads")
    h, hkv = (q.shape[1], k.shape[1])
    if hkv == 0 or h % hkv:
        raise InputError(f"{hkv!r} key/value heads do not divide {h} query heads (GQA needs "
                         "H % Hkv == 0)")
    if varlen:
        cu_q, sq = _cu_seqlens(cu_seqlens_q, "cu_seqlens_q", q.shape[0], q.device)
        cu_k, sk = _cu_seqlens(cu_seqlens_k, "cu_seqlens_k", k.shape[0], q.device)
        if cu_q.numel() != cu_k.numel():
            raise InputError(f"cu_seqlens_q has {cu_q.numel()} entries, cu_seqlens_k "
                             f"{cu_k.numel()}; both must be B + 1")
        b = cu_q.numel() - 1
        for name, given, actual in (("max_seqlen_q", max_seqlen_q, sq),
                                    ("max_seqlen_k", max_seqlen_k, sk)):
            if given is not None and given < actual:
                raise InputError(f"{name}={given!r} is below the longest sequence ({actual}); "
                                 "leave it None to compute it")
        if key_padding_mask is not None:
            raise InputError("key_padding_mask cannot be combined with cu_seqlens: the varlen form "
                             "already drops the padding")
    else:
        cu_q = cu_k = None
        b, sq, sk = q.shape[0], q.shape[2], k.shape[2]
        if k.shape[0] != b:
            raise InputError(f"batch sizes differ: q has {b}, k/v have {k.shape[0]}")
    left, right = _window(window, causal)
    if sm_scale is None:
        sm_scale = 1.0 / math.sqrt(d)
    if not (isinstance(sm_scale, (int, float)) and math.isfinite(sm_scale) and sm_scale > 0):
        raise InputError(f"sm_scale={sm_scale!r} must be a positive finite float "
                         "(default 1/sqrt(D))")
    cap = 0.0 if softcap is None else softcap
    if not (isinstance(cap, (int, float)) and math.isfinite(cap) and cap >= 0):
        raise InputError(f"softcap={softcap!r} must be a positive float, or None/0 for no capping")
    if not (isinstance(dropout_p, (int, float)) and 0.0 <= dropout_p < 1.0):
        raise InputError(f"dropout_p={dropout_p!r} must be in [0, 1)")
    if seed is not None and not isinstance(seed, int):
        raise InputError(f"seed={seed!r} must be an int or None")
    seed_val = None if seed is None else seed % _SEED_MOD
    slopes = None
    if alibi_slopes is not None:
        if not isinstance(alibi_slopes, Tensor) or tuple(alibi_slopes.shape) not in ((h,), (b, h)):
            shape = tuple(alibi_slopes.shape) if isinstance(alibi_slopes, Tensor) else alibi_slopes
            raise InputError(f"alibi_slopes has shape {shape!r}; expected ({h},) or ({b}, {h})")
        slopes = alibi_slopes.to(device=q.device, dtype=torch.float32).expand(b, h).contiguous()
    kpm = None
    if key_padding_mask is not None:
        if not isinstance(key_padding_mask, Tensor) or key_padding_mask.dtype != torch.bool \
                or tuple(key_padding_mask.shape) != (b, sk):
            got = (tuple(key_padding_mask.shape), key_padding_mask.dtype) \
                if isinstance(key_padding_mask, Tensor) else key_padding_mask
            raise InputError(f"key_padding_mask {got!r} must be a bool tensor of shape "
                             f"({b}, {sk}), True = attend")
        kpm = key_padding_mask.to(q.device).contiguous()
    if attn_mask is not None:
        _check_attn_mask(attn_mask, varlen, (b, h, sq, sk))
    spec = Spec(batch=b, heads=h, kv_heads=hkv, head_dim=d,
                max_seqlen_q=max_seqlen_q or sq if varlen else sq,
                max_seqlen_k=max_seqlen_k or sk if varlen else sk,
                sm_scale=float(sm_scale), window_left=left, window_right=right,
                softcap=float(cap), dropout_p=float(dropout_p), seed=seed_val, varlen=varlen,
                return_lse=bool(return_lse))
    return Call(q, k, v, spec, slopes, kpm, cu_q, cu_k, attn_mask)


def _check_attn_mask(mask: Any, varlen: bool, shape: tuple[int, int, int, int]) -> None:
    """SDPA's ``attn_mask``: bool or float, broadcastable to (B, H, Sq, Sk)."""
    if varlen:
        raise InputError("attn_mask cannot be combined with cu_seqlens; mask the packed "
                         "sequences through their lengths")
    if not isinstance(mask, Tensor) or not (mask.dtype == torch.bool or mask.is_floating_point()):
        raise InputError(f"attn_mask={mask!r} must be a bool tensor (True = attend) or a float "
                         "tensor added to the scores")
    try:
        torch.broadcast_shapes(mask.shape, shape)
    except RuntimeError:
        raise InputError(f"attn_mask has shape {tuple(mask.shape)!r}, which does not broadcast "
                         f"to (B, H, Sq, Sk) = {shape}") from None


def with_seed(call: Call) -> Call:
    """The call with a dropout seed drawn from torch's generator if none was given."""
    if call.spec.dropout_p == 0 or call.spec.seed is not None:
        return call
    seed = int(torch.randint(0, _SEED_MOD, (1,)).item())  # follows torch.manual_seed
    return replace(call, spec=replace(call.spec, seed=seed))
