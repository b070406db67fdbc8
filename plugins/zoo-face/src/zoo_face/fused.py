"""Fused cosine-margin softmax cross-entropy for C ≫ B: one (B, C) buffer, three matmuls.

Computes, for the losses whose non-target logits are ``s · cos θ_j`` (NormFace, CosFace,
ArcFace, combined margin, AdaFace, MagFace),

    ℓ_i = log Σ_j exp(z_ij) − z_{i,y_i},   z_ij = s·ρ_j·a_ij (j ≠ y_i),   z_{i,y_i} = s·φ(c_i),

with ``a = x̂ Wᵀ`` (raw centres), ``ρ_j = 1/‖W_j‖``, ``c_i = ρ_{y_i} a_{i,y_i}`` and the
gradient written out by hand. Nothing of size (C, D) is made but the centre gradient, and
the centres are never normalised: ρ scales the (B, C) buffer instead.

Forward, all in the one buffer: ``a`` (matmul) → ``z`` (× sρ, B target entries set) →
``p = softmax(z)`` in place (the row stays in cache) → ``ρ_j p_ij``, what the backward reads.
``ℓ_i = m_i + log S_i − z_{i,y_i}`` with ``m_i = max_j z_ij`` and ``1/S_i = max_j p_ij``, so
a target probability that underflows costs no precision.

Backward, with ``Q_ij = ∂L/∂a_ij = s g_i ρ_j p_ij`` off the target and ``ρ_y ∂L/∂c_i`` on it
(``g_i = ∂L/∂ℓ_i``; the B values of ``∂L/∂c`` come from autograd through the margin, so any
``target_logit`` plugs in): the B target entries of the buffer are overwritten for the
duration of two matmuls (and restored, so a retained graph can run backward again), the
row factor ``s g_i`` goes on the small operands, and

    ∂L/∂x̂ = Q W,   M = Qᵀ x̂,   ∂L/∂W_j = M_j − ρ_j² ⟨M_j, W_j⟩ W_j

(the last term: the derivative of ρ_j). Nothing here asks the device for a value.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable


def softmax_(e: Tensor) -> Tensor:
    """Row softmax of ``e`` written over ``e`` (each row is read, then rewritten, in cache)."""
    return torch.ops.aten._softmax.out(e, 1, False, out=e)


def row_dot(a: Tensor, b: Tensor) -> Tensor:
    """⟨a_j, b_j⟩ for each row j of two (C, D) matrices: one batched product, no (C, D)
    temporary, and one parallel region (row blocks in a Python loop keep the rows in cache
    but stall each other's threads on a busy machine)."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


class MarginSoftmaxCE(torch.autograd.Function):
    """``MarginSoftmaxCE.apply(x, weight, target, loss)`` → mean ℓ over rows with target ≥ 0.

    ``loss`` supplies ``s`` and ``target_logit(c, x)``; ``x`` (B, D) raw embeddings,
    ``weight`` (C, D), ``target`` (B,) with −1 for rows left out.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, target: Tensor, loss: Any) -> Tensor:
        s = loss.s
        keep = target >= 0                                                      # (B,)
        t = target.clamp(min=0)
        rows = torch.arange(x.shape[0], device=x.device)
        rho = torch.linalg.vector_norm(weight, dim=1).clamp_min_(1e-12).reciprocal_()  # (C,)
        with torch.enable_grad():
            x_leaf = x.detach().requires_grad_()
            x_hat = F.normalize(x_leaf, dim=1)                                  # (B, D)
        e = x_hat.detach() @ weight.t()                                         # a (B, C)
        with torch.enable_grad():
            c = (e[rows, t] * rho[t]).requires_grad_()                          # cos θ_y (B,)
            phi = loss.target_logit(c, x_leaf) * s                              # (B,)
        e.mul_(rho * s)                                                         # z
        e[rows, t] = torch.where(keep, phi.detach().to(e.dtype), e[rows, t])
        top = e.amax(1)                                                         # m (B,)
        softmax_(e)                                                             # p
        lse = top - e.amax(1).log()                                             # log Σ exp z
        p_t = e[rows, t]                                                        # (B,)
        e.mul_(rho)                                                    # ρ_j p_ij: read twice
        nll = (lse - phi.detach().to(e.dtype)) * keep
        count = keep.sum().clamp(min=1)
        ctx.save_for_backward(weight, rho, t, keep, p_t, count)
        ctx.buffer = e              # not saved: the backward writes B entries, then restores them
        ctx.graph = (x_leaf, x_hat, c, phi)
        ctx.s = s
        return (nll.sum() / count).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        weight, rho, t, keep, p_t, count = ctx.saved_tensors
        e = ctx.buffer
        x_leaf, x_hat_graph, c, phi = ctx.graph
        rows = torch.arange(e.shape[0], device=e.device)
        g = (grad / count) * keep                                               # ∂L/∂ℓ (B,)
        d_phi = (g * (p_t - 1)).to(phi.dtype)
        d_c, d_x_margin = torch.autograd.grad(phi, [c, x_leaf], d_phi, retain_graph=True,
                                              allow_unused=True)
        row = (g * ctx.s).to(e.dtype)                                           # s g_i (B,)
        rho_t = rho[t]
        saved = e[rows, t]
        e[rows, t] = torch.where(row != 0, rho_t * d_c.to(e.dtype) / row, saved)  # Q / row
        d_x_hat = (e @ weight).mul_(row[:, None])                               # (B, D)
        x_hat = x_hat_graph.detach()
        d_w = e.t() @ (x_hat * row[:, None])                                    # M (C, D)
        e[rows, t] = saved
        d_w.addcmul_(weight, (row_dot(d_w, weight) * rho * rho)[:, None], value=-1)
        d_x, = torch.autograd.grad(x_hat_graph, x_leaf, d_x_hat, retain_graph=True)
        if d_x_margin is not None:
            d_x = d_x + d_x_margin
        return d_x, d_w, None, None
