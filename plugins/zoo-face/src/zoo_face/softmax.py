"""Softmax and the multiplicative angular margins: L-Softmax and SphereFace (A-Softmax).

* Softmax baseline: ``f_j = W_j · x + b_j`` and cross-entropy.
* L-Softmax (Liu et al., 2016, "Large-Margin Softmax Loss for Convolutional Neural Networks",
  eq. 5–6): ``f_y = ‖W_y‖ ‖x‖ ψ(θ_y)`` with
  ``ψ(θ) = (−1)^k cos(mθ) − 2k`` for ``θ ∈ [kπ/m, (k+1)π/m]``, ``k ∈ {0, …, m−1}``, the
  monotonically decreasing extension of ``cos(mθ)`` to [0, π]. Training starts close to the
  plain softmax and anneals ``λ`` in ``f_y = (λ ‖W_y‖‖x‖cos θ_y + ‖W_y‖‖x‖ψ(θ_y)) / (1 + λ)``
  with ``λ = max(λ_min, base · (1 + γ·t)^(−power))`` at training step ``t``.
* SphereFace (Liu et al., 2017, "SphereFace: Deep Hypersphere Embedding for Face
  Recognition", eq. 6–7): the same ``ψ`` with ``‖W_j‖ = 1`` and no bias, so
  ``f_j = ‖x‖ cos θ_j``; the paper anneals ``λ`` to ``λ_min = 5``.

``cos(mθ)`` is evaluated as the Chebyshev polynomial ``T_m(cos θ)``, so the gradient stays
finite at cos θ = ±1. ``m = 1`` means no margin (ψ(θ) = cos θ).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .margin import (
    IGNORE_INDEX,
    MarginLoss,
    check_positive_int,
    check_range,
    clamped_acos,
    replace_target,
    working_dtype,
)


class Softmax(MarginLoss):
    """Linear layer plus cross-entropy: the baseline every margin loss is measured against.

    Example:
        >>> loss = Softmax(embedding_size=512, num_classes=10_000)
        >>> loss(torch.randn(8, 512), torch.randint(0, 10_000, (8,)))
    """

    class_parameters = ("weight", "bias")

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, bias: bool = True,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(embedding_size, num_classes, ignore_index=ignore_index)
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None

    def logits(self, x: Tensor, target: Tensor, weight: Tensor,  # type: ignore[override]
               bias: Tensor | None = None) -> Tensor:
        return F.linear(x, weight, bias)                                   # (B, C)


def chebyshev(c: Tensor, m: int) -> Tensor:
    """``T_m(c) = cos(m · acos c)`` by the recurrence ``T_{n+1} = 2c T_n − T_{n−1}``."""
    prev, cur = torch.ones_like(c), c
    for _ in range(m - 1):
        prev, cur = cur, 2 * c * cur - prev
    return cur if m >= 1 else prev


def psi(c: Tensor, m: int) -> Tensor:
    """ψ(θ) = (−1)^k cos(mθ) − 2k, k = ⌊mθ/π⌋, from c = cos θ (same shape)."""
    with torch.no_grad():
        k = torch.floor(clamped_acos(c) * m / math.pi).clamp(0, m - 1)
        sign = 1 - 2 * torch.remainder(k, 2)
    return sign * chebyshev(c, m) - 2 * k


class LSoftmax(MarginLoss):
    """L-Softmax: multiplicative angular margin ``m`` on unnormalised weights and features.

    Args:
        embedding_size: D.
        num_classes: C.
        m: integer angular multiplier (1 = plain softmax without bias).
        base, gamma, power, lambda_min: the λ schedule
            ``λ = max(lambda_min, base · (1 + gamma · step)^(−power))``; ``step`` counts the
            forward passes in training mode (buffer ``step``, saved with the state dict).
        anneal: ``False`` fixes ``λ = lambda_min``.
        ignore_index: label value left out of the loss.
    """

    normalize_weight = False

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, m: int = 4,
                 base: float = 1000.0, gamma: float = 0.12, power: float = 1.0,
                 lambda_min: float = 0.0, anneal: bool = True,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(embedding_size, num_classes, ignore_index=ignore_index)
        self.m = check_positive_int("m", m)
        self.base = check_range("base", base, 0, math.inf)
        self.gamma = check_range("gamma", gamma, 0, math.inf)
        self.power = check_range("power", power, 0, math.inf)
        self.lambda_min = check_range("lambda_min", lambda_min, 0, math.inf)
        self.anneal = anneal
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def lambda_(self) -> float:
        """The current λ of the annealing schedule."""
        if not self.anneal:
            return self.lambda_min
        value = self.base * (1 + self.gamma * int(self.step)) ** (-self.power)
        return max(self.lambda_min, value)

    def logits(self, x: Tensor, target: Tensor, weight: Tensor, **_: Tensor) -> Tensor:
        lam = self.lambda_
        if self.training:
            self.step += 1
        if self.normalize_weight:
            weight = F.normalize(weight, dim=1)
        out = x @ weight.t()                                               # (B, C)
        dtype = working_dtype(out)
        index = target.clamp(min=0)
        raw = out.gather(1, index[:, None]).squeeze(1).to(dtype)           # (B,) ‖W‖‖x‖cos θ
        norm = (x.to(dtype).norm(dim=1) * weight[index].to(dtype).norm(dim=1)).clamp_min(1e-12)
        c = raw / norm                                                     # (B,) cos θ_y
        f_y = (lam * raw + norm * psi(c, self.m)) / (1 + lam)
        return replace_target(out.clone(), target, f_y)

    @classmethod
    def example(cls) -> LSoftmax:
        return cls(embedding_size=8, num_classes=5, m=3)


class SphereFace(LSoftmax):
    """SphereFace (A-Softmax): ψ(θ) margin with unit-norm class centres and no bias.

    Same arguments as :class:`LSoftmax`; the paper's schedule ends at ``lambda_min = 5``.
    """

    normalize_weight = True

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, m: int = 4,
                 base: float = 1000.0, gamma: float = 0.12, power: float = 1.0,
                 lambda_min: float = 5.0, anneal: bool = True,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(embedding_size, num_classes, m=m, base=base, gamma=gamma, power=power,
                         lambda_min=lambda_min, anneal=anneal, ignore_index=ignore_index)
