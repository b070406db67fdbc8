"""The LSTM's whole-sequence recurrences, with hand-written backpropagation through time.

``PlainLSTM`` (no step mask, no projection: the common case) is the fast path: the input
projections of all steps as one product, then per step one product and pointwise operations
on (B, H) slices. ``GeneralLSTM`` adds the step mask of variable lengths and the projection
h = W_hr m (Sak et al. 2014), and is the one traced by ``torch.compile`` (the fast path
writes through ``out=`` into views, which dynamo refuses).

Rows. The states live in one buffer ``hs`` (T+1, B, H): the step reads h_{t−1} from one row
and writes h_t into the row the next step reads, so the outputs y are a view of ``hs`` and
no state is copied. Forward, step t reads row t and writes row t+1 (h_0 in row 0); reverse,
it reads row t+1 and writes row t (h_0 in row T). The cell states ``cells`` follow the same
rows. The pre-activations W_hh h_{t−1} + W_ih x_t + (b_ih + b_hh) are one product (oneDNN's
inner product on the CPU) plus the precomputed input term and the bias, added by the C gate
kernel, or inside the product on the ATen path; the weight gradients are single products
over all steps, ∂L/∂W_hh = Σ_t δ_tᵀ h_{t−1} = δᵀ hs and ∂L/∂W_ih = δᵀ x, and the input
gradient is δ W_ih. On Intel CPUs those sequence products and the backward's per-step
δ_t W_hh are torch's BLAS (MKL), which reads the transposed operands in place
(``fused.blas_first``). The step-sized buffers (states, gates, δ, the input gradient) come
from ``zoo.spares``: last call's memory where nothing else holds it, so no page faults.

Gates. On the CPU in float32 each step's gate arithmetic (forward: σ(i), σ(f), tanh(g),
σ(o), c_t, tanh(c_t), h_t from the pre-activations; backward: δ_t and the carried dc) is one
call of a C function (``lstm_gates.c``, built at first use: ``lstm_native.py``), its rows
shared by torch's OpenMP threads where torch's runtime allows (else on the calling thread).
It saves tanh(g) itself, so no weight is doubled. Elsewhere, without a C compiler, or
with ``ZOO_RNN_NATIVE=0``, it is ATen operations: the g rows of the weights and biases are
doubled, so one σ gives σ(i), σ(f), σ(2g), σ(o), and tanh(g) = 2σ(2g) − 1; each operation
runs on one (B, H) slice (B·H = 16384 at batch 32, H 512), below ATen's grain size, so on
the calling thread without waking (and waiting for) the others.

Backward, from dh_t = ∂L/∂y_t + (carried ∂L/∂h_t) and the carried dc:
dc_t = dc + dh_t o (1 − tanh² c_t); δ_i = dc_t g i(1 − i); δ_f = dc_t c_{t−1} f(1 − f);
δ_g = dc_t i (1 − g²); δ_o = dh_t tanh(c_t) o(1 − o) (g standing for tanh(g)); then the
carried dc ← dc_t f and dh ← δ_t W_hh.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

import zoo_core as zoo

from . import lstm_native
from .fused import StepProduct, blas_first, doubled_g, matmul_t, order


class PlainLSTM(torch.autograd.Function):
    """One direction, no mask, no projection; see the module docstring."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, w_ih: Tensor, b_ih: Tensor | None, h0: Tensor,
                c0: Tensor, w_hh: Tensor, b_hh: Tensor | None, reverse: bool
                ) -> tuple[Tensor, Tensor, Tensor]:
        steps, batch, inputs = x.shape
        hid = c0.shape[-1]
        shift = int(reverse)                       # step t reads row t + shift
        spares = zoo.spares.of(w_hh)               # last step's buffers, where free
        hs = spares.empty("h", (steps + 1, batch, hid), x)  # h_{t−1} in the row step t reads
        cells = spares.empty("c", (steps + 1, batch, hid), x)  # c_{t−1} likewise
        hs[steps * shift], cells[steps * shift] = h0, c0
        tanh_c = spares.empty("tanh_c", (steps, batch, hid), x)
        kernel = lstm_native.gates(x)              # C, or None: the torch steps
        rows = (lambda t: t) if kernel is not None else (lambda t: doubled_g(t, hid))
        bias = None if b_ih is None else rows(b_ih + b_hh)
        w_in, x2d = rows(w_ih), x.reshape(steps * batch, inputs)
        in_product = bias if kernel is None else None        # else the C kernel adds it
        if blas_first(x):                          # W_ih x_t (+ b) for all steps at once
            gx = spares.empty("gates", (steps * batch, 4 * hid), x)
            if in_product is None:
                torch.mm(x2d, w_in.t(), out=gx)
            else:
                torch.addmm(in_product, x2d, w_in.t(), out=gx)
        else:
            gx = StepProduct(w_in, steps * batch)(x2d, in_product)
        gx = gx.view(steps, batch, -1)
        product = StepProduct(rows(w_hh), batch)
        if kernel is not None:                     # gx[t] becomes σ(i), σ(f), tanh(g), σ(o)
            _forward_c(kernel, product, gx, x.new_zeros(4 * hid) if bias is None else bias,
                       hs, cells, tanh_c, reverse)
            tanh_g = None
        else:
            tanh_g = x.new_empty(steps, batch, hid)
            _forward_torch(product, gx, hs, cells, tanh_g, tanh_c, reverse)
        ctx.save_for_backward(x, gx, hs, cells, tanh_g, tanh_c, w_ih, w_hh)
        ctx.reverse, ctx.has_bias, ctx.kernel = reverse, b_ih is not None, kernel
        ctx.spares = spares
        last = steps * (1 - shift)
        return hs[1 - shift: steps + 1 - shift], hs[last].clone(), cells[last].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: Tensor, dh: Tensor, dc: Tensor) -> tuple[Tensor | None, ...]:
        x, gates, hs, cells, tanh_g, tanh_c, w_ih, w_hh = ctx.saved_tensors
        steps, batch, hid = tanh_c.shape
        shift = int(ctx.reverse)
        blas = blas_first(x)
        # δ_t ↦ δ_t W_hh: BLAS reads W_hh as it is; oneDNN wants its transpose, reordered
        back = (lambda d: d @ w_hh) if blas else StepProduct(w_hh.t().contiguous(), batch)
        delta = ctx.spares.empty("delta", (steps, batch, 4 * hid), tanh_c)
        if ctx.kernel is not None:
            dh, dc = _backward_c(ctx.kernel, back, gates, cells, tanh_c, dy, dh, dc, delta,
                                 ctx.reverse)
        else:
            dh, dc = _backward_torch(back, gates, hs, cells, tanh_g, tanh_c, dy, dh, dc,
                                     delta, ctx.reverse)
        flat = delta.view(steps * batch, 4 * hid)
        rows = hs[shift: steps + shift].view(steps * batch, hid)
        inputs = x.reshape(steps * batch, -1)
        if blas:                                    # δᵀ hs and δᵀ x, the transposes read in place
            dw_hh, dw_ih = flat.t() @ rows, flat.t() @ inputs
        else:                                       # as the transposes of hsᵀ δ and xᵀ δ
            dw_hh = matmul_t(rows.t(), flat.t()).t()
            dw_ih = matmul_t(inputs.t(), flat.t()).t()
        db = flat.sum(0) if ctx.has_bias else None
        dx = None
        if ctx.needs_input_grad[0]:                 # δ W_ih
            dx = torch.mm(flat, w_ih, out=ctx.spares.empty("dx", inputs.shape, x)) if blas \
                else matmul_t(flat, w_ih.t())
            dx = dx.view_as(x)
        return dx, dw_ih, db, dh, dc, dw_hh, db, None


def _forward_c(kernel: lstm_native.Gates, product: StepProduct, gx: Tensor, bias: Tensor,
               hs: Tensor, cells: Tensor, tanh_c: Tensor, reverse: bool) -> None:
    """The steps with the gate arithmetic in C: per step one product, one C call."""
    steps, batch, hid = tanh_c.shape
    shift, row, row4 = int(reverse), batch * hid * 4, batch * hid * 16   # bytes per step
    gp, hp, cp, tp = gx.data_ptr(), hs.data_ptr(), cells.data_ptr(), tanh_c.data_ptr()
    bp = bias.data_ptr()
    step = kernel.forward_step
    for t in order(steps, reverse):
        read, write = t + shift, t + 1 - shift
        rec = product(hs[read])                     # W_hh h_{t−1} (B, 4H), contiguous
        step(batch, hid, rec.data_ptr(), gp + t * row4, bp, cp + read * row,
             cp + write * row, tp + t * row, hp + write * row)


def _backward_c(kernel: lstm_native.Gates, back: StepProduct, gates: Tensor, cells: Tensor,
                tanh_c: Tensor, dy: Tensor, dh: Tensor, dc: Tensor, delta: Tensor,
                reverse: bool) -> tuple[Tensor, Tensor]:
    steps, batch, hid = tanh_c.shape
    shift, row, row4 = int(reverse), batch * hid * 4, batch * hid * 16
    if dy.stride(2) != 1:                            # rows of H floats (any row stride)
        dy = dy.contiguous()
    dh, dc = dh.contiguous(), dc.clone(memory_format=torch.contiguous_format)
    gp, cp, tp, dp = gates.data_ptr(), cells.data_ptr(), tanh_c.data_ptr(), delta.data_ptr()
    yp, y_step, ldy = dy.data_ptr(), dy.stride(0) * 4, dy.stride(1)
    step = kernel.backward_step
    for t in order(steps, not reverse):
        step(batch, hid, gp + t * row4, cp + (t + shift) * row, tp + t * row, dh.data_ptr(),
             yp + t * y_step, ldy, dc.data_ptr(), dp + t * row4)
        dh = back(delta[t])
    return dh, dc


def _forward_torch(product: StepProduct, gx: Tensor, hs: Tensor, cells: Tensor,
                   tanh_g: Tensor, tanh_c: Tensor, reverse: bool) -> None:
    """The steps in ATen operations on (B, H) slices, the g rows doubled (module docstring)."""
    shift = int(reverse)
    for t in order(tanh_c.shape[0], reverse):      # gx[t] becomes σ(i), σ(f), σ(2g), σ(o)
        read, write = t + shift, t + 1 - shift
        pre = product(hs[read], add=gx[t]).chunk(4, 1)
        i, f, s_g, o = (torch.sigmoid(a, out=s)
                        for a, s in zip(pre, gx[t].chunk(4, 1), strict=True))
        g = torch.mul(s_g, 2, out=tanh_g[t]).sub_(1)
        c = torch.mul(f, cells[read], out=cells[write]).addcmul_(i, g)
        tc = torch.mul(c, 2, out=tanh_c[t]).sigmoid_().mul_(2).sub_(1)  # tanh(c_t)
        torch.mul(o, tc, out=hs[write])


def _backward_torch(back: StepProduct, sig: Tensor, hs: Tensor, cells: Tensor,
                    tanh_g: Tensor, tanh_c: Tensor, dy: Tensor, dh: Tensor, dc: Tensor,
                    delta: Tensor, reverse: bool) -> tuple[Tensor, Tensor]:
    shift = int(reverse)
    one = tanh_c.new_ones(())
    for t in order(tanh_c.shape[0], not reverse):
        i, f, _, o = sig[t].chunk(4, 1)
        d_i, d_f, d_g, d_o = delta[t].chunk(4, 1)
        tc, g = tanh_c[t], tanh_g[t]
        dh = dh + dy[t]
        # o (1 − tanh² c_t) = o − h_t tanh(c_t)
        dc = torch.addcmul(dc, dh, torch.addcmul(o, hs[t + 1 - shift], tc, value=-1))
        torch.addcmul(i, i, i, value=-1, out=d_i).mul_(g).mul_(dc)
        torch.addcmul(f, f, f, value=-1, out=d_f).mul_(cells[t + shift]).mul_(dc)
        torch.addcmul(one, g, g, value=-1, out=d_g).mul_(i).mul_(dc)
        torch.addcmul(o, o, o, value=-1, out=d_o).mul_(tc).mul_(dh)
        dc = dc.mul_(f)
        dh = back(delta[t])
    return dh, dc


class GeneralLSTM(torch.autograd.Function):
    """One direction with a step mask (T, B, 1) and/or the projection W_hr (see fused.py's
    docstring for the mask's meaning)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, w_ih: Tensor, b_ih: Tensor | None, h0: Tensor,
                c0: Tensor, w_hh: Tensor, b_hh: Tensor | None, w_hr: Tensor | None,
                mask: Tensor | None, reverse: bool) -> tuple[Tensor, Tensor, Tensor]:
        steps, batch, _ = x.shape
        hid, out = c0.shape[-1], h0.shape[-1]
        # (T, B, 4H): W_ih x_t + b_ih + b_hh for all steps in one product, then W_hh h_{t−1}
        # added and the gates applied in place. The g rows are doubled (in W_ih, the biases
        # and W_hh) so that one σ over all four gates gives tanh(g) = 2σ(2g) − 1.
        bias = None if b_ih is None else doubled_g(b_ih + b_hh, hid)
        inputs = x.reshape(steps * batch, -1)
        acts = StepProduct(doubled_g(w_ih, hid), steps * batch)(inputs, bias)
        acts = acts.view(steps, batch, 4 * hid)
        recurrent = StepProduct(doubled_g(w_hh, hid), batch)
        c_prev = x.new_empty(steps, batch, hid)        # c_{t−1}
        tanh_c = x.new_empty(steps, batch, hid)        # tanh(c_t)
        h_prev = x.new_empty(steps, batch, out)        # h_{t−1}
        m_all = x.new_empty(steps, batch, hid) if w_hr is not None else None
        y = x.new_empty(steps, batch, out)             # (T, B, P)
        plain = w_hr is None and mask is None
        h, c = h0, c0
        for t in order(steps, reverse):
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
        back = StepProduct(w_hh.t().contiguous(), batch)   # δ_t ↦ δ_t W_hh
        d_gates = torch.empty_like(acts)                # δ_t w.r.t. the pre-activations
        d_hnew = torch.empty_like(h_prev) if w_hr is not None else None
        dh, dc = dh.clone(), dc.clone()
        for t in order(steps, not ctx.reverse):
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


def lstm_layer(x: Tensor, w_ih: Tensor, b_ih: Tensor | None, h0: Tensor, c0: Tensor,
               w_hh: Tensor, b_hh: Tensor | None, w_hr: Tensor | None = None,
               mask: Tensor | None = None, reverse: bool = False
               ) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM direction over all steps, input projection included: x (T, B, I), h0 (B, P),
    c0 (B, H), mask (T, B, 1) bool (biases both given or both None).

    Returns y (T, B, P) with zeros at masked steps, h_T (B, P), c_T (B, H).
    """
    if w_hr is None and mask is None and not torch.compiler.is_compiling():
        return PlainLSTM.apply(x, w_ih, b_ih, h0, c0, w_hh,  # type: ignore[no-any-return]
                               b_hh, reverse)
    return GeneralLSTM.apply(x, w_ih, b_ih, h0, c0, w_hh,  # type: ignore[no-any-return]
                             b_hh, w_hr, mask, reverse)
