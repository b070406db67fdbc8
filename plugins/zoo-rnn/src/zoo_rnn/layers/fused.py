"""Whole-sequence recurrences with hand-written backpropagation through time.

The input projections W_ih x_t + b_ih of all steps are one matrix product (``gx``, (T, B, G),
done by the caller, or inside the LSTM's function); the loop here does only the recurrent
product and the gate arithmetic, in place on preallocated buffers. Backward walks the steps
in reverse computing the gate gradients δ_t and the carried dh, dc; the weight gradients are
then single products over all steps, ∂L/∂W_hh = Σ_t δ_tᵀ h_{t−1} = δᵀ H_prev, rather than T
small outer products.

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


def _tanh_(x: Tensor) -> Tensor:
    """tanh in place as 2σ(2x) − 1: equal in exact arithmetic, within 2e-7 in fp32; on CPU
    the sigmoid kernel measured much faster than tanh's at these sizes under thread contention.
    """
    return x.mul_(2).sigmoid_().mul_(2).sub_(1)


def _order(steps: int, reverse: bool) -> range:
    return range(steps - 1, -1, -1) if reverse else range(steps)


class _StepProduct:
    """x ↦ x Wᵀ for the T small per-step products with one weight W (N, K).

    On the CPU in float32 the weight is reordered once for oneDNN's inner product (the engine
    torch.nn's LSTM uses), which runs these small-batch products ~1.3× faster than the
    BLAS call; elsewhere, under ``torch.compile``, or when that operator is missing, it is a
    plain ``mm``.
    """

    def __init__(self, weight: Tensor, batch: int) -> None:
        self.weight = weight
        self.packed: Tensor | None = None
        if _ONEDNN and weight.device.type == "cpu" and weight.dtype == torch.float32 \
                and not torch.compiler.is_compiling():  # the reorder has no fake-tensor kernel
            try:
                self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), batch)
            except (RuntimeError, AttributeError):  # no oneDNN in this build
                self.packed = None

    def __call__(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, bias, "none", [], "")
        return F.linear(x, self.weight, bias)


_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn,
                                                               "_linear_pointwise")


def _doubled_g(t: Tensor, hid: int) -> Tensor:
    """A copy of the gate-stacked ``t`` (4H, ...) with the g rows times 2."""
    t = t.clone()
    t[2 * hid: 3 * hid].mul_(2)
    return t


class _LSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, w_ih: Tensor, b_ih: Tensor | None, h0: Tensor,
                c0: Tensor, w_hh: Tensor, b_hh: Tensor | None, w_hr: Tensor | None,
                mask: Tensor | None, reverse: bool) -> tuple[Tensor, Tensor, Tensor]:
        steps, batch, _ = x.shape
        hid, out = c0.shape[-1], h0.shape[-1]
        # (T, B, 4H): W_ih x_t + b_ih + b_hh for all steps in one product, then W_hh h_{t−1}
        # added and the gates applied in place. The g rows are doubled (in W_ih, the biases
        # and W_hh) so that one σ over all four gates gives tanh(g) = 2σ(2g) − 1.
        bias = None if b_ih is None else _doubled_g(b_ih + b_hh, hid)
        inputs = x.reshape(steps * batch, -1)
        acts = _StepProduct(_doubled_g(w_ih, hid), steps * batch)(inputs, bias)
        acts = acts.view(steps, batch, 4 * hid)
        recurrent = _StepProduct(_doubled_g(w_hh, hid), batch)
        c_prev = x.new_empty(steps, batch, hid)        # c_{t−1}
        tanh_c = x.new_empty(steps, batch, hid)        # tanh(c_t)
        h_prev = x.new_empty(steps, batch, out)        # h_{t−1}
        m_all = x.new_empty(steps, batch, hid) if w_hr is not None else None
        y = x.new_empty(steps, batch, out)             # (T, B, P)
        plain = w_hr is None and mask is None
        h, c = h0, c0
        for t in _order(steps, reverse):
            h_prev[t], c_prev[t] = h, c
            a = acts[t].add_(recurrent(h)).sigmoid_()  # σ(i), σ(f), σ(2g), σ(o)
            i, f, g, o = a.chunk(4, 1)
            g.mul_(2).sub_(1)                           # tanh(g)
            c_new = torch.addcmul(f * c, i, g)
            tc = torch.tanh(c_new, out=tanh_c[t])
            if plain:
                h, c = torch.mul(o, tc, out=y[t]), c_new
                continue
            m = o * tc
            if m_all is not None:
                m_all[t] = m
            h_new = m if w_hr is None else F.linear(m, w_hr)
            if mask is None:
                h, c = h_new, c_new
                y[t] = h_new
            else:
                h, c = torch.where(mask[t], h_new, h), torch.where(mask[t], c_new, c)
                torch.mul(h_new, mask[t], out=y[t])
        ctx.save_for_backward(x, w_ih, acts, c_prev, tanh_c, h_prev, m_all, w_hh, w_hr, mask)
        ctx.has_bias, ctx.reverse = b_hh is not None, reverse
        return y, h.clone() if plain else h, c

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: Tensor, dh: Tensor, dc: Tensor) -> tuple[Tensor | None, ...]:
        x, w_ih, acts, c_prev, tanh_c, h_prev, m_all, w_hh, w_hr, mask = ctx.saved_tensors
        steps, batch, four_h = acts.shape
        hid = four_h // 4
        keep = None if mask is None else mask.to(dy.dtype)
        back = _StepProduct(w_hh.t().contiguous(), batch)   # δ_t ↦ δ_t W_hh
        d_gates = torch.empty_like(acts)                # δ_t w.r.t. the pre-activations
        d_hnew = torch.empty_like(h_prev) if w_hr is not None else None
        dh, dc = dh.clone(), dc.clone()
        for t in _order(steps, not ctx.reverse):
            i, f, g, o = acts[t].chunk(4, 1)
            dhn = dy[t] + dh
            if keep is not None:
                dhn, dc_new = dhn * keep[t], dc * keep[t]
                dh_carry, dc_carry = dh * (1 - keep[t]), dc * (1 - keep[t])
            else:
                dc_new, dh_carry, dc_carry = dc, None, None
            if d_hnew is not None:
                d_hnew[t] = dhn
                dm = dhn @ w_hr
            else:
                dm = dhn
            tc = tanh_c[t]
            dc_new = dc_new + dm * o * (1 - tc * tc)
            di, df, dg, do = d_gates[t].chunk(4, 1)
            torch.mul(dc_new * g, i * (1 - i), out=di)
            torch.mul(dc_new * c_prev[t], f * (1 - f), out=df)
            torch.mul(dc_new * i, 1 - g * g, out=dg)
            torch.mul(dm * tc, o * (1 - o), out=do)
            dc = dc_new * f
            dh = back(d_gates[t])
            if dh_carry is not None:
                dh, dc = dh + dh_carry, dc + dc_carry
        flat = d_gates.reshape(-1, four_h)
        dw_hh = flat.t() @ h_prev.reshape(-1, h_prev.shape[-1])
        db_hh = flat.sum(0) if ctx.has_bias else None
        dw_hr = None
        if d_hnew is not None:
            dw_hr = d_hnew.reshape(-1, d_hnew.shape[-1]).t() @ m_all.reshape(-1, hid)
        dx = (flat @ w_ih).view_as(x) if ctx.needs_input_grad[0] else None
        dw_ih = flat.t() @ x.reshape(-1, x.shape[-1])
        return dx, dw_ih, db_hh, dh, dc, dw_hh, db_hh, dw_hr, None, None


class _GRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                mask: Tensor | None, reverse: bool) -> tuple[Tensor, Tensor]:
        steps, batch, three_h = gx.shape
        hid = three_h // 3
        saved = gx.new_empty(steps, batch, 4 * hid)     # (T, B, 4H): r, z, n, W_hn h + b_hn
        h_prev = gx.new_empty(steps, batch, hid)
        y = gx.new_empty(steps, batch, hid)
        recurrent = _StepProduct(w_hh, batch)
        h = h0
        for t in _order(steps, reverse):
            h_prev[t] = h
            x_r, x_z, x_n = gx[t].chunk(3, 1)
            gh = recurrent(h) if b_hh is None else recurrent(h).add_(b_hh)
            r, z, n, h_n = saved[t].chunk(4, 1)
            h_n.copy_(gh[:, 2 * hid:])
            torch.add(x_r, gh[:, :hid], out=r).sigmoid_()
            torch.add(x_z, gh[:, hid: 2 * hid], out=z).sigmoid_()
            _tanh_(torch.addcmul(x_n, r, h_n, out=n))
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
        back = _StepProduct(w_hh.t().contiguous(), batch)   # δ_t ↦ δ_t W_hh
        dh = dh.clone()
        for t in _order(steps, not ctx.reverse):
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
        for t in _order(steps, reverse):
            h_prev[t] = h
            h_new = h_new_all[t].addmm_(h, w_hh_t)
            h_new.relu_() if relu else _tanh_(h_new)
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
        for t in _order(h_new_all.shape[0], not ctx.reverse):
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


def lstm_layer(x: Tensor, w_ih: Tensor, b_ih: Tensor | None, h0: Tensor, c0: Tensor,
               w_hh: Tensor, b_hh: Tensor | None, w_hr: Tensor | None = None,
               mask: Tensor | None = None, reverse: bool = False
               ) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM direction over all steps, input projection included: x (T, B, I), h0 (B, P),
    c0 (B, H), mask (T, B, 1) bool (biases both given or both None).

    Returns y (T, B, P) with zeros at masked steps, h_T (B, P), c_T (B, H).
    """
    return _LSTM.apply(x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr,  # type: ignore[no-any-return]
                       mask, reverse)


def gru_recurrence(gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                   mask: Tensor | None = None, reverse: bool = False) -> tuple[Tensor, Tensor]:
    """GRU over all steps: gx (T, B, 3H), h0 (B, H) → y (T, B, H), h_T (B, H)."""
    return _GRU.apply(gx, h0, w_hh, b_hh, mask, reverse)  # type: ignore[no-any-return]


def elman_recurrence(gx: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                     mask: Tensor | None = None, reverse: bool = False,
                     relu: bool = False) -> tuple[Tensor, Tensor]:
    """Elman RNN over all steps: gx (T, B, H), h0 (B, H) → y (T, B, H), h_T (B, H)."""
    return _Elman.apply(gx, h0, w_hh, b_hh, mask, reverse, relu)  # type: ignore[no-any-return]
