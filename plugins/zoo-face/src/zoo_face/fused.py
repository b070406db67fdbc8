"""Fused cosine-margin softmax cross-entropy for C ≫ B (one (B, C) buffer, never rewritten).

Computes, for the losses whose non-target logits are ``s · cos θ_j`` (NormFace, CosFace,
ArcFace, combined margin, AdaFace, MagFace),

    ℓ_i = log Σ_j exp(z_ij) − z_{i,y_i},   z_ij = s·x̂_i·W_j/‖W_j‖ (j ≠ y_i),  z_{i,y_i} = s·φ_i,

with the gradient written out by hand. The logits buffer becomes ``e = exp(z − max_j z)`` in
place, then ``c_j e_ij`` (``c_j = s/‖W_j‖``); ``ℓ = max + log Σ e − s·φ`` needs no softmax
normalisation (and no underflow fallback), and the backward only *reads* the buffer: with
the row factors ``r_i = (∂L/∂ℓ_i) / Σ_j e_ij``,

    ∂L/∂x̂_i = r_i Σ_j e_ij c_j W_j,   ∂L/∂(W_j/‖W_j‖·‖W_j‖…) from M_j = c_j Σ_i r_i e_ij x̂_i,

minus the target terms (their logit is φ, not s·cos), then the centre gradient
``M_j − ρ_j² ⟨M_j, W_j⟩ W_j`` (``ρ_j = 1/‖W_j‖``: the projection on the sphere's tangent
space). Two matmuls read the buffer in the backward; nothing of size (C, D) is copied. The
target logits ``φ_i`` (B values) go through autograd on the gathered target rows, so any
margin function plugs in. Nothing here asks the device for a value.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable


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
        with torch.enable_grad():
            x_leaf = x.detach().requires_grad_()
            w_leaf = weight.detach()[t].requires_grad_()                        # (B, D)
            x_hat = F.normalize(x_leaf, dim=1)                                  # (B, D)
            c = (x_hat * F.normalize(w_leaf, dim=1)).sum(1)                     # (B,)
            phi = loss.target_logit(c, x_leaf) * s                              # (B,)
        col = torch.linalg.vector_norm(weight, dim=1).clamp_min(1e-12).reciprocal_()
        col.mul_(s)                                                             # c_j (C,)
        rows = torch.arange(x.shape[0], device=x.device)
        e = x_hat.detach() @ weight.t()                                         # (B, C)
        e.mul_(col)
        e[rows, t] = torch.where(keep, phi.detach().to(e.dtype), e[rows, t])
        top = e.amax(1, keepdim=True)                                           # (B, 1)
        e.sub_(top).exp_()                                          # exp(z − max) in place
        total = e.sum(1)                                                        # (B,)
        nll = (top.squeeze(1) + total.log() - phi.detach().to(e.dtype)) * keep
        e.mul_(col)                               # c_j e_ij: what the backward reads, twice
        count = keep.sum().clamp(min=1)
        ctx.save_for_backward(weight, col, t, keep, e, total, count)
        ctx.graph = (x_leaf, w_leaf, x_hat, phi)
        ctx.s = s
        return (nll.sum() / count).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        weight, col, t, keep, e, total, count = ctx.saved_tensors
        x_leaf, w_leaf, x_hat_graph, phi = ctx.graph
        x_hat = x_hat_graph.detach()
        rows = torch.arange(e.shape[0], device=e.device)
        scale = (grad / count) * keep                                           # (B,)
        r = (scale / total).to(e.dtype)                                         # (B,)
        ce_t = e[rows, t]                                                       # c_t e_t (B,)
        d_phi = ((ce_t / (col[t] * total) - 1) * scale).to(phi.dtype)
        target_term = r * ce_t                                                  # (B,)
        d_x_hat = (e @ weight) * r[:, None] - target_term[:, None] * weight[t]  # (B, D)
        d_w = e.t() @ (x_hat * r[:, None])                                      # (C, D)
        d_w.index_add_(0, t, x_hat * -target_term[:, None])
        inv = col / ctx.s                                                      # 1/‖W_j‖
        dot = torch.bmm(d_w.unsqueeze(1), weight.unsqueeze(2)).view(-1)         # (C,)
        d_w.addcmul_(weight, (dot * inv * inv)[:, None], value=-1)
        d_x, d_rows = torch.autograd.grad([x_hat_graph, phi], [x_leaf, w_leaf],
                                          [d_x_hat, d_phi], retain_graph=True)
        d_w.index_add_(0, t, d_rows)
        return d_x, d_w, None, None
