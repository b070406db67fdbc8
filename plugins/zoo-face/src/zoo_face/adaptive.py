"""Margins that adapt to the feature norm: AdaFace and MagFace.

* AdaFace (Kim et al., 2022, "AdaFace: Quality Adaptive Margin for Face Recognition",
  eq. 10–12): the feature norm ``‖z_i‖`` is a proxy of image quality. With batch statistics
  ``μ_z, σ_z`` kept as an exponential moving average (momentum α = 0.01),
  ``ẑ_i = clip((‖z_i‖ − μ_z) / (σ_z / h), −1, 1)``, ``g_angle = −m·ẑ_i``,
  ``g_add = m·ẑ_i + m`` and the target logit is ``s · (cos(θ_y + g_angle) − g_add)``: an
  angular (ArcFace-like) margin for high-quality samples, an additive (CosFace-like) one for
  low-quality samples. The norm enters the margin without gradient.
* MagFace (Meng et al., 2021, "MagFace: A Universal Representation for Face Recognition and
  Quality Assessment", eq. 4–6): with the magnitude ``a_i = ‖x_i‖`` clamped to
  ``[l_a, u_a]``, the angular margin grows linearly with it,
  ``m(a) = l_m + (u_m − l_m)(a − l_a)/(u_a − l_a)``, the target logit is ``s · cos(θ_y + m(a))``
  and the loss adds ``λ_g · g(a)`` with ``g(a) = 1/a + a/u_a²``. Gradient flows through
  ``m(a)``. Past ``θ + m(a) > π`` the ArcFace fallback ``cos θ − m(a)·sin m(a)`` applies.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

import zoo_core as zoo

from .additive import NormFace
from .margin import IGNORE_INDEX, check_range, clamped_acos, working_dtype


class AdaFace(NormFace):
    """AdaFace: feature-norm-adaptive margin with an EMA of the batch norm statistics.

    Args:
        s: scale (paper: 64).
        m: margin (paper: 0.4), in [0, π/2].
        h: concentration of ``ẑ`` (paper: 0.333); ``ẑ`` uses ``σ_z / h``.
        momentum: EMA momentum α of ``μ_z`` and ``σ_z`` (paper: 0.01), updated in training mode.
        init_mean, init_std: the EMA's starting values (buffers ``batch_mean``, ``batch_std``).
    """

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, s: float = 64.0,
                 m: float = 0.4, h: float = 0.333, momentum: float = 0.01,
                 init_mean: float = 20.0, init_std: float = 100.0,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(embedding_size, num_classes, s=s, ignore_index=ignore_index)
        self.m = check_range("m", m, 0.0, math.pi / 2)
        if not 0 < h <= 1:
            raise zoo.ConfigError(f"h={h!r} must lie in (0, 1] (paper: 0.333)")
        self.h = float(h)
        self.momentum = check_range("momentum", momentum, 0.0, 1.0)
        self.register_buffer("batch_mean", torch.tensor(float(init_mean)))
        self.register_buffer("batch_std", torch.tensor(float(init_std)))

    def norm_scaler(self, x: Tensor) -> Tensor:
        """ẑ (B,) in [−1, 1]; updates the EMA first when training."""
        norms = x.detach().to(working_dtype(x)).norm(dim=1).clamp(1e-3, 100)  # (B,)
        if self.training:
            std = norms.std() if norms.numel() > 1 else torch.zeros_like(norms[0])
            a = self.momentum
            self.batch_mean.mul_(1 - a).add_(a * norms.mean())
            self.batch_std.mul_(1 - a).add_(a * std)
        mean, std = self.batch_mean.to(norms.dtype), self.batch_std.to(norms.dtype)
        return ((norms - mean) / (std + 1e-3) * self.h).clamp(-1, 1)

    def target_logit(self, c: Tensor, x: Tensor) -> Tensor:
        z = self.norm_scaler(x).to(c.dtype)
        theta = clamped_acos(c)
        eps = 1e-3
        theta_m = (theta - self.m * z).clamp(eps, math.pi - eps)
        return torch.cos(theta_m) - (self.m * z + self.m)


class MagFace(NormFace):
    """MagFace: magnitude-aware angular margin plus the magnitude regulariser ``λ_g g(a)``.

    Args:
        s: scale (paper: 64).
        l_a, u_a: magnitude range (paper: 10, 110).
        l_m, u_m: margin range in radians (paper: 0.45, 0.8).
        lambda_g: weight of ``g(a) = 1/a + a/u_a²`` (paper: 35).
    """

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *, s: float = 64.0,
                 l_a: float = 10.0, u_a: float = 110.0, l_m: float = 0.45, u_m: float = 0.8,
                 lambda_g: float = 35.0, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(embedding_size, num_classes, s=s, ignore_index=ignore_index)
        if not 0 < l_a < u_a < math.inf:
            raise zoo.ConfigError(f"magnitude range (l_a, u_a)={(l_a, u_a)!r} must satisfy "
                                 "0 < l_a < u_a (paper: 10, 110)")
        self.l_a, self.u_a = float(l_a), float(u_a)
        self.u_m = check_range("u_m", u_m, 0.0, math.pi / 2)
        self.l_m = check_range("l_m", l_m, 0.0, self.u_m, hint="need l_m <= u_m")
        self.lambda_g = check_range("lambda_g", lambda_g, 0.0, math.inf)

    def magnitude(self, x: Tensor) -> Tensor:
        """a (B,) = ‖x‖ clamped to [l_a, u_a], in float32 or wider."""
        return x.to(torch.promote_types(x.dtype, torch.float32)).norm(dim=1).clamp(
            self.l_a, self.u_a)

    def margin(self, a: Tensor) -> Tensor:
        """m(a) (B,): linear from l_m at l_a to u_m at u_a."""
        return self.l_m + (self.u_m - self.l_m) * (a - self.l_a) / (self.u_a - self.l_a)

    def target_logit(self, c: Tensor, x: Tensor) -> Tensor:
        m = self.margin(self.magnitude(x)).to(c.dtype)
        theta = clamped_acos(c)
        phi = torch.cos(theta + m)
        return torch.where(theta + m <= math.pi, phi, c - m * torch.sin(m))

    def regularizer(self, x: Tensor) -> Tensor:
        a = self.magnitude(x)
        return self.lambda_g * (1 / a + a / self.u_a ** 2)
