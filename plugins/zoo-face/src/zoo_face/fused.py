"""Fused cosine-margin softmax cross-entropy for C ≫ B (one (B, C) and one (C, D) buffer).

Computes, for the losses whose non-target logits are ``s · cos θ_j`` (NormFace, CosFace,
ArcFace, combined margin, AdaFace, MagFace),

    ℓ_i = log Σ_j exp(z_ij) − z_{i,y_i},   z_ij = s·x̂_i·W_j/‖W_j‖ (j ≠ y_i),  z_{i,y_i} = s·φ_i,

with the gradient written out by hand: for ``cos_ij = (x̂_i · W_j) ρ_j``, ``ρ_j = 1/‖W_j‖``,
and ``G = ∂L/∂(x̂ Wᵀ)``, the centre gradient is ``M_j − ρ_j² ⟨M_j, W_j⟩ W_j`` with
``M = Gᵀ x̂`` (the projection of ``M_j`` on the tangent space of the sphere, times ρ_j).
The logits buffer becomes the softmax in place (on the CPU) and then ``G`` in place (a second
backward through the same graph recomputes it); the (C, D) product
``M`` becomes the centre gradient in place. The target logits ``φ_i`` (B values) go through
autograd on the gathered target rows, so any margin function plugs in.
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
        keep = target >= 0
        rows = torch.nonzero(keep).squeeze(1)
        t = target[rows]
        with torch.enable_grad():
            x_leaf = x.detach().requires_grad_()
            w_leaf = weight.detach()[target.clamp(min=0)].requires_grad_()      # (B, D)
            x_hat = F.normalize(x_leaf, dim=1)                                  # (B, D)
            c = (x_hat * F.normalize(w_leaf, dim=1)).sum(1)                     # (B,)
            phi = loss.target_logit(c, x_leaf) * s                              # (B,)
        inv = torch.linalg.vector_norm(weight, dim=1).clamp_min(1e-12).reciprocal_()  # (C,)
        p = _softmax(x_hat.detach(), weight, inv, s, rows, t, phi.detach())   # (B, C)
        p_t = p[rows, t]                                                        # (B',)
        nll = torch.zeros_like(phi.detach())
        nll[rows] = -torch.log(p_t.to(nll.dtype))
        tiny = p_t < 1e-30                    # p underflowed: take log-sum-exp the long way
        if bool(tiny.any()):
            r = rows[tiny]
            z = (x_hat.detach()[r] @ weight.t()) * (inv * s)
            z[torch.arange(r.numel()), t[tiny]] = phi.detach()[r].to(z.dtype)
            nll[r] = torch.logsumexp(z, 1).to(nll.dtype) - phi.detach()[r]
        count = max(int(rows.numel()), 1)
        ctx.save_for_backward(weight, inv, rows, t, p_t)
        ctx.probs = p                 # rewritten in place by backward, so not version-checked
        ctx.graph = (x_leaf, w_leaf, x_hat, phi)
        ctx.s, ctx.count = s, count
        return nll.sum() / count

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        weight, inv, rows, t, p_t = ctx.saved_tensors
        g = ctx.probs                                                           # softmax
        x_leaf, w_leaf, x_hat, phi = ctx.graph
        if getattr(ctx, "spent", False):      # a second backward (retain_graph): recompute
            g = _softmax(x_hat.detach(), weight, inv, ctx.s, rows, t, phi.detach())
        ctx.spent = True
        scale = grad / ctx.count
        d_phi = torch.zeros_like(phi)
        d_phi[rows] = (p_t.to(phi.dtype) - 1) * scale
        g[rows, t] = 0                                   # the target logit is φ, not s·cos
        row_scale = torch.zeros(g.shape[0], 1, dtype=g.dtype, device=g.device)  # 0: ignored
        row_scale[rows] = scale.to(g.dtype)
        g.mul_(inv * ctx.s)                              # ∂L/∂(x̂ Wᵀ) / row_scale   (B, C)
        d_x_hat = (g @ weight) * row_scale                                      # (B, D)
        d_w = g.t() @ (x_hat.detach() * row_scale)                              # (C, D)
        dot = torch.bmm(d_w.unsqueeze(1), weight.unsqueeze(2)).view(-1)         # (C,)
        d_w.addcmul_(weight, (dot * inv * inv)[:, None], value=-1)
        d_x, d_rows = torch.autograd.grad([x_hat, phi], [x_leaf, w_leaf], [d_x_hat, d_phi],
                                          retain_graph=True)  # (B, D) graph, kept for replays
        d_w.index_add_(0, t, d_rows[rows])
        return d_x, d_w, None, None


def _softmax(x_hat: Tensor, weight: Tensor, inv: Tensor, s: float, rows: Tensor, t: Tensor,
             phi: Tensor) -> Tensor:
    """Softmax (B, C) of the margin logits, in the logits buffer on the CPU."""
    z = x_hat @ weight.t()                                                  # (B, C)
    z.mul_(inv * s)
    z[rows, t] = phi[rows].to(z.dtype)
    if z.device.type == "cpu":   # the row-wise kernel writes each element after reading it
        return torch.ops.aten._softmax.out(z, 1, False, out=z)
    return torch.softmax(z, 1)
