"""Whole-sequence recurrences with hand-written backpropagation through time.

The input projections W_ih x_t + b_ih of all steps are one matrix product (``gx``, (T, B, G),
done by the caller; the LSTM's, in ``fused_lstm.py``, inside its function); the loop does only
the recurrent product and the gate arithmetic, in place on preallocated buffers. Backward
walks the steps in reverse computing the gate gradients δ_t and the carried dh, dc; the
weight gradients are then single products over all steps, ∂L/∂W_hh = Σ_t δ_tᵀ h_{t−1} =
δᵀ H_prev, rather than T small outer products.

Variable lengths use a step mask k_t ∈ {0, 1} (T, B, 1): a masked step leaves the state as it
was and outputs zeros, so final states are those at each sequence's true length, and a reverse
direction starts from h_0 at its last real step. Equations: see the cell modules.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

import zoo_core as zoo


def tanh_(x: Tensor) -> Tensor:
    """tanh in place as 2σ(2x) − 1: equal in exact arithmetic, within 2e-7 in fp32; on CPU
    the sigmoid kernel measured much faster than tanh's at these sizes under thread contention.
    """
    return x.mul_(2).sigmoid_().mul_(2).sub_(1)


def order(steps: int, reverse: bool) -> range:
    return range(steps - 1, -1, -1) if reverse else range(steps)


class StepProduct:
    """x ↦ x Wᵀ (+ b) for the T small per-step products with one weight W (N, K), then σ with
    ``activation="sigmoid"`` (not with ``add``).

    On the CPU in float32 the weight is reordered once for oneDNN's inner product (the engine
    torch.nn's LSTM uses), which runs these small-batch products ~1.3× faster than the
    BLAS call and applies the σ inside the product; elsewhere, under ``torch.compile``, or when
    that operator is missing, it is a plain ``linear``.
    """

    def __init__(self, weight: Tensor, batch: int, activation: str = "none") -> None:
        self.weight, self.activation = weight, activation
        self.packed: Tensor | None = None
        if _ONEDNN and weight.device.type == "cpu" and weight.dtype == torch.float32 \
                and not torch.compiler.is_compiling():  # the reorder has no fake-tensor kernel
            try:
                self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), batch)
            except (RuntimeError, AttributeError):  # no oneDNN in this build
                self.packed = None

    def __call__(self, x: Tensor, bias: Tensor | None = None, add: Tensor | None = None
                 ) -> Tensor:
        """x Wᵀ + bias, plus ``add`` (same shape as the result) when given."""
        if self.packed is not None:
            if add is not None:
                return torch.ops.mkldnn._linear_pointwise.binary(x, add, self.packed, bias,
                                                                 "add")
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, bias, self.activation,
                                                      [], "")
        y = F.linear(x, self.weight, bias)
        if add is not None:
            return y.add_(add)
        return y.sigmoid_() if self.activation == "sigmoid" else y


_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn,
                                                               "_linear_pointwise")


def matmul_t(a: Tensor, b: Tensor) -> Tensor:
    """a bᵀ for the products over all steps: oneDNN's inner product on the CPU in float32
    (measured 5-15% faster than the BLAS call on these shapes on an AMD EPYC, transposed
    views included), torch's BLAS on Intel CPUs (:func:`blas_first`)."""
    if _ONEDNN and a.device.type == "cpu" and a.dtype == torch.float32 \
            and not torch.compiler.is_compiling() and not blas_first(a):
        return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    return a @ b.t()


def blas_first(x: Tensor) -> bool:
    """Whether torch's BLAS runs the large products for CPU tensor ``x``: where it is Intel's
    MKL on an Intel CPU. There it reads transposed operands in place and measured ~10% faster
    than oneDNN's inner product on the LSTM's sequence products (Xeon with AVX-512, 2
    threads); MKL on other vendors' CPUs is the slower of the two. Decided at first use."""
    global _INTEL_MKL
    if _INTEL_MKL is None:
        _INTEL_MKL = torch.backends.mkl.is_available() and \
            zoo.native.cpu_vendor() == "GenuineIntel"
    return x.device.type == "cpu" and _INTEL_MKL


_INTEL_MKL: bool | None = None


def doubled_g(t: Tensor, hid: int) -> Tensor:
    """A copy of the gate-stacked ``t`` (4H, ...) with the g rows times 2."""
    t = t.clone()
    t[2 * hid: 3 * hid].mul_(2)
    return t


class _GRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                mask: Tensor | None, reverse: bool) -> tuple[Tensor, Tensor]:
        steps, batch, three_h = gx.shape
        hid = three_h // 3
        saved = gx.new_empty(steps, batch, 4 * hid)     # (T, B, 4H): r, z, n, W_hn h + b_hn
        h_prev = gx.new_empty(steps, batch, hid)
        y = gx.new_empty(steps, batch, hid)
        recurrent = StepProduct(w_hh, batch)
        h = h0
        for t in order(steps, reverse):
            h_prev[t] = h
            x_r, x_z, x_n = gx[t].chunk(3, 1)
            gh = recurrent(h) if b_hh is None else recurrent(h).add_(b_hh)
            r, z, n, h_n = saved[t].chunk(4, 1)
            h_n.copy_(gh[:, 2 * hid:])
            torch.add(x_r, gh[:, :hid], out=r).sigmoid_()
            torch.add(x_z, gh[:, hid: 2 * hid], out=z).sigmoid_()
            tanh_(torch.addcmul(x_n, r, h_n, out=n))
            h_new = torch.addcmul(n, z, h - n)
            if mask is None:
                h = h_new
                y[t] = h_new
            else:
                h = torch.where(mask[t], h_new, h)
                torch.mul(h_new, mask[t], out=y[t])
        ctx.save_for_backward(saved, h_prev, w_hh, mask)
        ctx.has_bias, ctx.reverse = b_hh is not None, reverse
        return y, h

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: Tensor, dh: Tensor) -> tuple[Tensor | None, ...]:
        saved, h_prev, w_hh, mask = ctx.saved_tensors
        steps, batch, four_h = saved.shape
        hid = four_h // 4
        keep = None if mask is None else mask.to(dy.dtype)
        d_gx = saved.new_empty(steps, batch, 3 * hid)
        d_gh = saved.new_empty(steps, batch, 3 * hid)
        back = StepProduct(w_hh.t().contiguous(), batch)   # δ_t ↦ δ_t W_hh
        dh = dh.clone()
        for t in order(steps, not ctx.reverse):
            r, z, n, h_n = saved[t].chunk(4, 1)
            dhn = dy[t] + dh
            if keep is not None:
                dhn, dh_carry = dhn * keep[t], dh * (1 - keep[t])
            dxr, dxz, dxn = d_gx[t].chunk(3, 1)
            torch.mul(dhn * (h_prev[t] - n), z * (1 - z), out=dxz)
            torch.mul(dhn * (1 - z), 1 - n * n, out=dxn)
            torch.mul(dxn * h_n, r * (1 - r), out=dxr)
            dhr, dhz, dhn_ = d_gh[t].chunk(3, 1)
            dhr.copy_(dxr)
            dhz.copy_(dxz)
            torch.mul(dxn, r, out=dhn_)
            dh = back(d_gh[t]).addcmul_(dhn, z)
            if keep is not None:
                dh = dh + dh_carry
        flat = d_gh.reshape(-1, 3 * hid)
        dw_hh = flat.t() @ h_prev.reshape(-1, hid)
        db_hh = flat.sum(0) if ctx.has_bias else None
        return d_gx, dh, dw_hh, db_hh, None, None


class _Elman(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                mask: Tensor | None, reverse: bool, relu: bool) -> tuple[Tensor, Tensor]:
        steps = gx.shape[0]
        h_new_all = gx + b_hh if b_hh is not None else gx.clone()  # then φ(…) in place
        w_hh_t = w_hh.t()
        h_prev = torch.empty_like(gx)
        y = torch.empty_like(gx)
        h = h0
        for t in order(steps, reverse):
            h_prev[t] = h
            h_new = h_new_all[t].addmm_(h, w_hh_t)
            h_new.relu_() if relu else tanh_(h_new)
            if mask is None:
                h = h_new
                y[t] = h_new
            else:
                h = torch.where(mask[t], h_new, h)
                torch.mul(h_new, mask[t], out=y[t])
        ctx.save_for_backward(h_new_all, h_prev, w_hh, mask)
        ctx.has_bias, ctx.reverse, ctx.relu = b_hh is not None, reverse, relu
        return y, h.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: Tensor, dh: Tensor) -> tuple[Tensor | None, ...]:
        h_new_all, h_prev, w_hh, mask = ctx.saved_tensors
        keep = None if mask is None else mask.to(dy.dtype)
        d_pre = torch.empty_like(h_new_all)
        dh = dh.clone()
        for t in order(h_new_all.shape[0], not ctx.reverse):
            dhn = dy[t] + dh
            hn = h_new_all[t]
            if keep is not None:
                dhn, dh_carry = dhn * keep[t], dh * (1 - keep[t])
            if ctx.relu:
                torch.mul(dhn, hn > 0, out=d_pre[t])
            else:
                torch.mul(dhn, 1 - hn * hn, out=d_pre[t])
            dh = d_pre[t] @ w_hh
            if keep is not None:
                dh = dh + dh_carry
        flat = d_pre.reshape(-1, d_pre.shape[-1])
        dw_hh = flat.t() @ h_prev.reshape(-1, h_prev.shape[-1])
        db_hh = flat.sum(0) if ctx.has_bias else None
        return d_pre, dh, dw_hh, db_hh, None, None, None


def gru_recurrence(gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                   mask: Tensor | None = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
    """GRU over all steps: gx (T, B, 3H), h0 (B, H) → y (T, B, H), h_T (B, H)."""
    return _GRU.apply(gx, h0, w_hh, b_hh, mask, reverse)  # type: ignore[no-any-return]


def elman_recurrence(gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                     mask: Tensor | None = None, reverse: bool = False,
                     relu: bool = False) -> tuple[Tensor, Tensor]:
    """Elman RNN over all steps: gx (T, B, H), h0 (B, H) → y (T, B, H), h_T (B, H)."""
    return _Elman.apply(gx, h0, w_hh, b_hh, mask, reverse, relu)  # type: ignore[no-any-return]
