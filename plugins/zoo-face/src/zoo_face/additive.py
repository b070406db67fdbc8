"""Normalised softmax and the additive margins on the hypersphere.

All losses here use unit-norm embeddings and centres, logits ``s · cos θ_j`` for ``j ≠ y`` and
differ in the target logit ``s · φ(θ_y)``:

* NormFace (Wang et al., 2017, "NormFace: L2 Hypersphere Embedding for Face Verification",
  eq. 6): ``φ(θ) = cos θ``.
* CosFace / AM-Softmax (Wang et al., 2018, "CosFace: Large Margin Cosine Loss", eq. 4):
  ``φ(θ) = cos θ − m``.
* ArcFace (Deng et al., 2019, "ArcFace: Additive Angular Margin Loss", eq. 3):
  ``φ(θ) = cos(θ + m)``. Past ``θ + m > π`` the cosine would rise again; the standard fallback
  ``φ(θ) = cos θ − m · sin m`` keeps the target logit decreasing in θ. ``easy_margin`` instead
  applies the margin only where ``cos θ > 0``.
* Combined margin (Deng et al., 2019, eq. 4): ``φ(θ) = cos(m1·θ + m2) − m3``; past
  ``θ* = (π − m2)/m1`` it continues as ``cos θ − cos θ* − 1 − m3`` (continuous, decreasing).
* Sub-center ArcFace (Deng et al., 2020, "Sub-center ArcFace", eq. 1): ``K`` centres per
  class, ``cos θ_j = max_k cos θ_{j,k}``, then the ArcFace margin.

The angle is taken with a clamped ``acos`` on the B target cosines in float32, so half
precision inputs give no NaN at cos θ = ±1.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

import zoo_core as zoo

from .fused import MarginSoftmaxCE
from .margin import (
    IGNORE_INDEX,
    MarginLoss,
    check_positive_int,
    check_range,
    clamped_acos,
    cosine,
    replace_target,
    target_cosine,
)

_FUSED_DTYPES = (torch.float32, torch.float64)


def check_scale(s: float) -> float:
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < math.inf:
        raise zoo.ConfigError(f"scale s={s!r} must be a positive finite number (typical: 30-64)")
    return float(s)


class NormFace(MarginLoss):
    """Normalised softmax: logits ``s · cos θ_j``; the margin losses below extend it.

    Args:
        embedding_size: D.
        num_classes: C.
        s: the scale (inverse temperature) of the cosine logits.
        ignore_index: label value left out of the loss.
    """

    fused: ClassVar[bool] = True
    """Whether the non-target logits are ``s · cos θ`` of one centre per class, so that the
    fused kernel applies; a subclass with other logits sets it to False."""

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, s: float = 30.0,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(embedding_size, num_classes, ignore_index=ignore_index)
        self.s = check_scale(s)

    def cross_entropy(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        """Mean cross-entropy of the margin logits: the fused kernel (:mod:`zoo_face.fused`)
        for float32/float64 when the class declares ``fused`` (its logits are s·cos θ)."""
        # the same path eager and under torch.compile, the one the benchmark times; its
        # hand-written backward calls torch.autograd.grad, which dynamo does not trace
        # (expected failures of the compiles check, declared in zoo_face.plugin)
        if self.fused and input.dtype in _FUSED_DTYPES and self.weight.dtype == input.dtype:
            return MarginSoftmaxCE.apply(input, self.weight, target, self)
        return super().cross_entropy(input, target)

    def cos(self, x: Tensor, weight: Tensor) -> Tensor:
        """cos θ (B, C) between embeddings and centres."""
        return cosine(x, weight)

    def target_logit(self, c: Tensor, x: Tensor) -> Tensor:
        """φ(θ_y) (B,) from c = cos θ_y (float32 or float64); ``x`` are the raw embeddings."""
        return c

    def logits(self, x: Tensor, target: Tensor, weight: Tensor, **_: Tensor) -> Tensor:
        cos = self.cos(x, weight)                                          # (B, C)
        phi = self.target_logit(target_cosine(cos, target), x)             # (B,)
        return replace_target(cos * self.s, target, phi * self.s)


class CosFace(NormFace):
    """CosFace / AM-Softmax: additive cosine margin, ``φ(θ) = cos θ − m``.

    Args:
        s: scale (paper: 64).
        m: cosine margin in [0, 2] (paper: 0.35).
    """

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, s: float = 64.0,
                 m: float = 0.35, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(embedding_size, num_classes, s=s, ignore_index=ignore_index)
        self.m = check_range("m", m, 0.0, 2.0)

    def target_logit(self, c: Tensor, x: Tensor) -> Tensor:
        return c - self.m


class ArcFace(NormFace):
    """ArcFace: additive angular margin, ``φ(θ) = cos(θ + m)``.

    Args:
        s: scale (paper: 64).
        m: angular margin in radians, in [0, π/2] (paper: 0.5).
        easy_margin: apply the margin only where cos θ > 0 (else the standard fallback
            ``cos θ − m sin m`` where θ + m > π).
    """

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, s: float = 64.0,
                 m: float = 0.5, easy_margin: bool = False,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(embedding_size, num_classes, s=s, ignore_index=ignore_index)
        self.m = check_range("m", m, 0.0, math.pi / 2, hint="the angular margin is in radians")
        self.easy_margin = easy_margin

    def target_logit(self, c: Tensor, x: Tensor) -> Tensor:
        theta = clamped_acos(c)
        phi = torch.cos(theta + self.m)
        if self.easy_margin:
            return torch.where(c > 0, phi, c)
        return torch.where(theta + self.m <= math.pi, phi, c - self.m * math.sin(self.m))


class CombinedMargin(NormFace):
    """Combined margin ``φ(θ) = cos(m1·θ + m2) − m3`` (SphereFace, ArcFace, CosFace in one).

    Args:
        s: scale.
        m1: multiplicative angular margin, ≥ 1.
        m2: additive angular margin in radians, in [0, π/2].
        m3: additive cosine margin in [0, 2].
    """

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, s: float = 64.0,
                 m1: float = 1.0, m2: float = 0.3, m3: float = 0.2,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(embedding_size, num_classes, s=s, ignore_index=ignore_index)
        self.m1 = check_range("m1", m1, 1.0, 4.0)
        self.m2 = check_range("m2", m2, 0.0, math.pi / 2, hint="m2 is in radians")
        self.m3 = check_range("m3", m3, 0.0, 2.0)
        self.theta_star = (math.pi - self.m2) / self.m1

    def target_logit(self, c: Tensor, x: Tensor) -> Tensor:
        theta = clamped_acos(c)
        phi = torch.cos(self.m1 * theta + self.m2) - self.m3
        tail = c - math.cos(self.theta_star) - 1 - self.m3
        return torch.where(theta <= self.theta_star, phi, tail)


class SubCenterArcFace(ArcFace):
    """Sub-center ArcFace: ``k`` centres per class, the closest one carries the class.

    The centre matrix has shape (C, k, D). Args as :class:`ArcFace`, plus ``k`` (paper: 3).
    """

    fused = False                   # cos θ_j is a max over k sub-centres

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, k: int = 3,
                 s: float = 64.0, m: float = 0.5, easy_margin: bool = False,
                 ignore_index: int = IGNORE_INDEX) -> None:
        self.k = check_positive_int("k", k)
        super().__init__(embedding_size, num_classes, s=s, m=m, easy_margin=easy_margin,
                         ignore_index=ignore_index)

    def centre_shape(self) -> tuple[int, ...]:
        return (self.num_classes, self.k, self.embedding_size)

    def cos(self, x: Tensor, weight: Tensor) -> Tensor:
        c, k, d = weight.shape
        return cosine(x, weight.reshape(c * k, d)).view(x.shape[0], c, k).amax(2)  # (B, C)

    def dominant_subcenters(self, x: Tensor) -> Tensor:
        """Index (B, C) of the sub-centre closest to each embedding, for dropping outliers."""
        c, k, d = self.weight.shape
        return cosine(x, self.weight.reshape(c * k, d)).view(x.shape[0], c, k).argmax(2)
