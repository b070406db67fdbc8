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
``target_logit`` plugs in): the buffer is only read, the row factor ``s g_i`` goes on the
small operands, the B target entries are corrected by a gather and an ``index_add_``, and

    ∂L/∂x̂ = Q W,   M = Qᵀ x̂,   ∂L/∂W_j = M_j − ρ_j² ⟨M_j, W_j⟩ W_j

(the last term: the derivative of ρ_j), where ``⟨M_j, W_j⟩ = Σ_i Q_ij a_ij`` comes from the
(B, C) buffer (:func:`tangent_dots`), not from two passes over (C, D). Nothing here asks the
device for a value.

On CPU the two large buffers, the (B, C) logits and the (C, D) centre gradient, are kept by
the loss between steps (``zoo.spares``) and written again once nothing else holds them
(a fresh 200 MB buffer costs 50 000 page faults, about 40 ms a step on two cores). Between
steps that memory stays taken, as it would in CUDA's caching allocator.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

import zoo_core as zoo


def softmax_(e: Tensor) -> Tensor:
    """Row softmax of ``e`` written over ``e`` (each row is read, then rewritten, in cache)."""
    return torch.ops.aten._softmax.out(e, 1, False, out=e)


def xlogx_sum(e: Tensor, g: Tensor, scratch: Tensor | None = None) -> Tensor:
    """Σ_i g_i e_ij log e_ij over the rows of ``e`` ≥ 0, with 0 log 0 = 0, in three whole-tensor
    passes over ``scratch`` (``xlogy`` has no vector kernel on CPU)."""
    tiny = torch.finfo(e.dtype).tiny
    tmp = e.clamp_min(tiny) if scratch is None else torch.clamp_min(e, tiny, out=scratch)
    return g @ tmp.log_().mul_(e)


def tangent_dots(e: Tensor, rho: Tensor, t: Tensor, g: Tensor, lse: Tensor, on_target: Tensor,
                 scratch: Tensor | None = None) -> Tensor:
    """⟨M_j, W_j⟩ = Σ_i Q_ij a_ij without reading M or W. Off the target, Q_ij a_ij is
    g_i p_ij z_ij, with z_ij = log p_ij + lse_i and p_ij = e_ij / ρ_j read from the buffer;
    ``on_target`` (B,) is what the target entry adds instead of its g_i p_iy z_iy."""
    sums = torch.stack((g, g * lse)) @ e                   # Σ_i g_i e_ij, Σ_i g_i lse_i e_ij
    dots = xlogx_sum(e, g, scratch).add_(sums[1]).sub_(rho.log() * sums[0]).div_(rho)
    return dots.index_add_(0, t, on_target)


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
        spares = zoo.spares.of(loss)
        e = torch.mm(x_hat.detach(), weight.t(),                                # a (B, C)
                     out=spares.empty("logits", (x.shape[0], weight.shape[0]), weight))
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
        ctx.save_for_backward(e, weight, rho, t, keep, p_t, lse, count)
        ctx.graph = (x_leaf, x_hat, c, phi)
        ctx.s = s
        ctx.spares = spares
        return (nll.sum() / count).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        e, weight, rho, t, keep, p_t, lse, count = ctx.saved_tensors
        x_leaf, x_hat_graph, c, phi = ctx.graph
        g = (grad / count) * keep                                               # ∂L/∂ℓ (B,)
        d_phi = (g * (p_t - 1)).to(phi.dtype)
        d_c, d_x_margin = torch.autograd.grad(phi, [c, x_leaf], d_phi, retain_graph=True,
                                              allow_unused=True)
        row = (g * ctx.s).to(e.dtype)                                           # s g_i (B,)
        g, d_c = g.to(e.dtype), d_c.to(e.dtype)
        x_hat = x_hat_graph.detach()
        d_w = ctx.spares.empty("grad", tuple(weight.shape), weight)            # (C, D)
        flat = d_w.view(-1)
        scratch = flat[:e.numel()].view_as(e) if flat.numel() >= e.numel() else None
        on_target = d_c * c.detach().to(e.dtype) - g * p_t * phi.detach().to(e.dtype)
        w_dot = tangent_dots(e, rho, t, g, lse, on_target, scratch)            # before M
        fix = rho[t] * (d_c - row * p_t)                    # Q_{i,y_i} − row_i e_{i,y_i} (B,)
        d_x_hat = (e @ weight).mul_(row[:, None]).addcmul_(weight[t], fix[:, None])
        torch.mm(e.t(), x_hat * row[:, None], out=d_w)                          # M
        d_w.index_add_(0, t, x_hat * fix[:, None])
        d_w.addcmul_(weight, (w_dot * rho * rho)[:, None], value=-1)
        d_x, = torch.autograd.grad(x_hat_graph, x_leaf, d_x_hat, retain_graph=True)
        if d_x_margin is not None:
            d_x = d_x + d_x_margin
        return d_x, d_w, None, None
