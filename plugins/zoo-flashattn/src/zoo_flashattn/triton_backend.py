"""The ``triton`` backend: launches our FlashAttention-2 kernels and wires them to autograd.

Block shapes are autotuned once per problem shape on the GPU (timed with Triton's
``do_bench`` and cached for the process); short sequences and the interpreter use the first
candidate. Head dims that are not powers of two are padded to the next one (masked loads).
fp16 and bf16 use the tensor cores; fp32 runs with ``input_precision="ieee"`` (exact fp32
products). Importing this module does not import Triton; the kernels load on first use.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._spec import Call

_TUNED: dict[tuple[Any, ...], tuple[int, int, int, int]] = {}
_AUTOTUNE_MIN_SEQLEN = 1024
# (BLOCK_M, BLOCK_N, num_warps, num_stages), first = default
_FWD = {64: [(128, 64, 4, 3), (128, 128, 8, 3), (128, 64, 8, 4), (64, 64, 4, 3),
             (128, 128, 4, 2)],
        128: [(128, 64, 8, 3), (128, 128, 8, 3), (128, 64, 4, 3), (64, 64, 4, 3),
              (128, 128, 8, 2)],
        256: [(64, 32, 4, 2), (64, 64, 8, 2), (128, 32, 8, 2)]}
_DKDV = {64: [(64, 128, 8, 3), (32, 128, 4, 3), (64, 64, 4, 3)],
         128: [(64, 128, 8, 3), (32, 128, 4, 3), (64, 64, 4, 3)],
         256: [(32, 64, 4, 2), (16, 64, 4, 2)]}
_DQ = {64: [(128, 64, 8, 3), (128, 32, 4, 3), (64, 64, 4, 3)],
       128: [(128, 64, 8, 3), (128, 32, 4, 3), (64, 64, 4, 3)],
       256: [(64, 32, 4, 2), (64, 16, 4, 2)]}
_INTERPRETED = [(16, 16, 4, 1)]
_FORCED: list[int | None] = [None]


def tuned() -> dict[tuple[Any, ...], tuple[int, int, int, int]]:
    """The configs autotuning chose in this process: {(kernel, *shape key): config}."""
    return dict(_TUNED)


def force_config(index: int | None) -> None:
    """Use candidate ``index`` of every kernel (clipped) instead of autotuning; None undoes.

    Lets several processes compile disjoint configs into Triton's on-disk cache at once.
    """
    _FORCED[0] = index


def _kernels() -> Any:
    from . import _triton_bwd, _triton_fwd

    return _triton_fwd, _triton_bwd


def interpreting() -> bool:
    """Whether the kernels run in Triton's CPU interpreter."""
    import sys

    mod = sys.modules.get(f"{__package__}._triton_fwd")
    if mod is not None:
        return type(mod.fwd_kernel).__name__ == "InterpretedFunction"
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def supports(call: Call, auto: bool = False) -> bool | str:
    """True, or why the Triton kernels cannot run this call."""
    q = call.q
    if call.mask is not None:
        return "the Triton kernels take no attn_mask; the sdpa backend runs such calls"
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"dtype {q.dtype} is not supported (float16, bfloat16, float32)"
    try:
        import triton  # noqa: F401
    except ImportError:
        return "triton is not installed"
    if q.device.type == "cuda":
        if interpreting():
            return "the kernels were loaded for the CPU interpreter (TRITON_INTERPRET=1)"
        if q.dtype == torch.bfloat16 and torch.cuda.get_device_capability(q.device)[0] < 8:
            return "bfloat16 needs a GPU of compute capability 8.0 or newer"
        return True
    if q.device.type != "cpu":
        return f"device {q.device.type!r} is not supported (CUDA, or CPU in the interpreter)"
    if auto:
        return "CPU tensors run only in Triton's interpreter, which is never picked " \
               "automatically; force backend='triton' under TRITON_INTERPRET=1"
    if not interpreting():
        return "CPU tensors need TRITON_INTERPRET=1 set before the kernels are first imported"
    if q.dtype == torch.bfloat16:
        return "Triton's CPU interpreter has no bfloat16; use float16 or float32"
    return True


def _block_d(d: int) -> int:
    return max(16, 1 << (d - 1).bit_length())


def _candidates(table: dict[int, list[tuple[int, int, int, int]]], d: int
                ) -> list[tuple[int, int, int, int]]:
    if interpreting():
        return _INTERPRETED
    return table[min(k for k in table if k >= _block_d(d))]


def _pick(name: str, key: tuple[Any, ...], table: dict[int, list[Any]], d: int, seqlen: int,
          launch: Callable[[tuple[int, int, int, int]], None]) -> tuple[int, int, int, int]:
    """The fastest candidate config for this shape (timed once, then cached)."""
    cands = _candidates(table, d)
    if _FORCED[0] is not None:
        return cands[min(_FORCED[0], len(cands) - 1)]
    if len(cands) == 1 or seqlen < _AUTOTUNE_MIN_SEQLEN:
        return cands[0]
    full = (name, *key)
    if full not in _TUNED:
        from triton.testing import do_bench

        best, best_ms = cands[0], math.inf
        for cfg in cands:
            try:
                ms = do_bench(lambda cfg=cfg: launch(cfg), warmup=5, rep=20)
            except Exception:  # a config that does not fit this GPU (shared memory, registers)
                continue
            if ms < best_ms:
                best, best_ms = cfg, ms
        _TUNED[full] = best
    return _TUNED[full]


def _strides(x: Tensor, varlen: bool) -> tuple[int, int, int]:
    """(batch, head, sequence) strides; packed tensors have no batch axis."""
    return (0, x.stride(1), x.stride(0)) if varlen else (x.stride(0), x.stride(1), x.stride(2))


def _lastdim(x: Tensor) -> Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


class Dims(NamedTuple):
    """Sizes every kernel reads (longest sequences when packed)."""

    seqlen_q: int
    seqlen_k: int
    heads: int
    kv_heads: int
    groups: int


class Scalars(NamedTuple):
    """The call's numeric options, passed at run time."""

    sm_scale: float
    softcap: float  # 1.0 when off (never divided by then)
    window_left: int
    window_right: int
    seed: int
    threshold: int  # dropout: keep when hash >> 8 >= threshold = p · 2²⁴
    drop_scale: float  # 1 / (1 - p)


class Features(NamedTuple):
    """Compile-time choices: one compiled kernel per distinct value."""

    head_dim: int
    block_d: int  # head_dim rounded up to a power of two (masked loads)
    precision: str  # tl.dot input precision: "ieee" for fp32, else "tf32" (fp16/bf16 ignore it)
    varlen: bool
    even_m: bool  # every query block is full (no row masks on Q, dO)
    softcap: bool
    alibi: bool
    kpm: bool
    window_left: bool
    window_right: bool
    dropout: bool


class _Common:
    """Launch arguments shared by the forward and backward kernels of one call."""

    def __init__(self, call: Call) -> None:
        s, q = call.spec, call.q
        self.call, self.spec, self.varlen = call, s, s.varlen
        self.lse_shape = (s.heads, q.shape[0]) if s.varlen else (s.batch, s.heads, q.shape[2])
        self.lse_strides = (0, q.shape[0], 1) if s.varlen else (s.heads * q.shape[2],
                                                                 q.shape[2], 1)
        dummy = q
        self.slopes = call.slopes if call.slopes is not None else dummy
        self.kpm = call.kpm.view(torch.uint8) if call.kpm is not None else dummy
        self.s_kpm = call.kpm.stride(0) if call.kpm is not None else 0
        self.cu_q = call.cu_q if call.cu_q is not None else dummy
        self.cu_k = call.cu_k if call.cu_k is not None else dummy
        p = s.dropout_p
        self.dims = Dims(s.max_seqlen_q, s.max_seqlen_k, s.heads, s.kv_heads, s.groups)
        self.scalars = Scalars(s.sm_scale, s.softcap or 1.0, s.window_left, s.window_right,
                               s.seed or 0, int(p * 2**24), 1.0 / (1.0 - p))
        self.features = Features(
            head_dim=s.head_dim, block_d=_block_d(s.head_dim),
            precision="ieee" if q.dtype == torch.float32 else "tf32", varlen=s.varlen,
            even_m=False, softcap=s.softcap > 0, alibi=call.slopes is not None,
            kpm=call.kpm is not None, window_left=s.window_left >= 0,
            window_right=s.window_right >= 0, dropout=p > 0)
        self.key = (q.dtype, s.head_dim, s.groups, self.features,
                    1 << max(s.max_seqlen_q, 1).bit_length(),
                    1 << max(s.max_seqlen_k, 1).bit_length())

    def features_for(self, block_m: int) -> Features:
        """The features of a launch with query blocks of ``block_m`` rows."""
        even = not self.varlen and self.spec.max_seqlen_q % block_m == 0
        return self.features._replace(even_m=even)


def forward(c: _Common, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    import triton

    fwd, _ = _kernels()
    s = c.spec
    out = torch.empty_like(q)
    lse = torch.empty(c.lse_shape, device=q.device, dtype=torch.float32)
    strides = [_strides(x, c.varlen) for x in (q, k, v, out)]

    def launch(cfg: tuple[int, int, int, int]) -> None:
        bm, bn, warps, stages = cfg
        grid = (triton.cdiv(s.max_seqlen_q, bm), s.batch * s.heads)
        fwd.fwd_kernel[grid](
            q, k, v, out, lse, c.slopes, c.kpm, c.cu_q, c.cu_k, *strides, c.lse_strides,
            c.s_kpm, c.dims, c.scalars, BLOCK_M=bm, BLOCK_N=bn, F=c.features_for(bm),
            num_warps=warps, num_stages=stages)

    launch(_pick("fwd", c.key, _FWD, s.head_dim, s.max_seqlen_k, launch))
    return out, lse


def backward(c: _Common, do: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor,
             lse: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    import triton

    fwd, bwd = _kernels()
    s = c.spec
    do = _lastdim(do)
    delta = torch.empty_like(lse)
    grid = (triton.cdiv(s.max_seqlen_q, 64), s.batch * s.heads)
    fwd.delta_kernel[grid](out, do, delta, c.cu_q, _strides(out, c.varlen),
                           _strides(do, c.varlen), c.lse_strides, c.dims, BLOCK_M=64,
                           F=c.features_for(64))
    lse2 = (lse * 1.4426950408889634).masked_fill(lse == float("-inf"), float("inf"))
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    tensors = (q, k, v, do, lse2, delta)
    strides = [_strides(x, c.varlen) for x in (q, k, v, do)]

    def launch_kv(cfg: tuple[int, int, int, int]) -> None:
        bm, bn, warps, stages = cfg
        grid = (triton.cdiv(s.max_seqlen_k, bn), s.batch * s.kv_heads)
        bwd.dkdv_kernel[grid](
            *tensors, dk, dv, c.slopes, c.kpm, c.cu_q, c.cu_k, *strides,
            _strides(dk, c.varlen), _strides(dv, c.varlen), c.lse_strides, c.s_kpm, c.dims,
            c.scalars, BLOCK_M=bm, BLOCK_N=bn, F=c.features_for(bm), num_warps=warps,
            num_stages=stages)

    def launch_q(cfg: tuple[int, int, int, int]) -> None:
        bm, bn, warps, stages = cfg
        grid = (triton.cdiv(s.max_seqlen_q, bm), s.batch * s.heads)
        bwd.dq_kernel[grid](
            *tensors, dq, c.slopes, c.kpm, c.cu_q, c.cu_k, *strides, _strides(dq, c.varlen),
            c.lse_strides, c.s_kpm, c.dims, c.scalars, BLOCK_M=bm, BLOCK_N=bn,
            F=c.features_for(bm), num_warps=warps, num_stages=stages)

    launch_kv(_pick("dkdv", c.key, _DKDV, s.head_dim, s.max_seqlen_k, launch_kv))
    launch_q(_pick("dq", c.key, _DQ, s.head_dim, s.max_seqlen_k, launch_q))
    return dq, dk, dv


class _Flash(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, c):  # type: ignore[override]
        with torch.cuda.device(q.device) if q.is_cuda else _nullctx():
            out, lse = forward(c, q, k, v)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.c = c
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, do, _dlse):  # type: ignore[override]
        q, k, v, out, lse = ctx.saved_tensors
        with torch.cuda.device(q.device) if q.is_cuda else _nullctx():
            dq, dk, dv = backward(ctx.c, do, q, k, v, out, lse)
        return dq, dk, dv, None


class _nullctx:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def attention(call: Call) -> tuple[Tensor, Tensor]:
    """Run a validated call on the Triton kernels; returns (out, lse)."""
    q, k, v = _lastdim(call.q), _lastdim(call.k), _lastdim(call.v)
    return _Flash.apply(q, k, v, _Common(call))
