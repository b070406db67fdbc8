"""MoCo v2's "aug+" views (Chen et al. 2020, arXiv:2003.04297, Section 3), batched in torch
for small grayscale images: a random resized crop (area 20-100% in the paper, here
``crop_scale``, aspect 3/4-4/3) with a small rotation, brightness and contrast jitter
(probability 0.8), Gaussian blur (probability 0.5, σ in [0.1, 2.0] pixels of a 224-pixel image,
scaled to the image), additive noise; horizontal flips only when asked (they change digits).
Grayscale conversion, part of aug+ for colour images, has nothing to do here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo_core import InputError


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def augment(x: Tensor, generator: torch.Generator | None = None, *,
            crop_scale: tuple[float, float] = (0.5, 1.0), rotate: float = 15.0,
            jitter: float = 0.4, p_jitter: float = 0.8, p_blur: float = 0.5,
            noise: float = 0.05, flip: bool = False) -> Tensor:
    """One random view of each image of ``x`` (N, C, H, W), values in [0, 1]."""
    if x.dim() != 4 or not x.is_floating_point():
        raise InputError(f"x must be float images (N, C, H, W), got {x.dtype} of shape "
                         f"{tuple(x.shape)!r}")
    n, c, h, w = x.shape
    g = generator
    area = _uniform(n, *crop_scale, g)
    ratio = torch.exp(_uniform(n, math.log(3 / 4), math.log(4 / 3), g))
    sx, sy = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    tx, ty = (1 - sx) * _uniform(n, -1, 1, g), (1 - sy) * _uniform(n, -1, 1, g)
    angle = torch.deg2rad(_uniform(n, -rotate, rotate, g))
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([sx * cos * sign, -sy * sin, tx], 1),
                         torch.stack([sx * sin * sign, sy * cos, ty], 1)], 1)  # (N, 2, 3)
    grid = F.affine_grid(theta.to(x), [n, c, h, w], align_corners=False)
    out = F.grid_sample(x, grid, align_corners=False)
    on = (torch.rand(n, generator=g) < p_jitter).view(n, 1, 1, 1).to(x.device)
    bright = _uniform(n, 1 - jitter, 1 + jitter, g).view(n, 1, 1, 1).to(x)
    contrast = _uniform(n, 1 - jitter, 1 + jitter, g).view(n, 1, 1, 1).to(x)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = torch.where(on, ((out - mean) * contrast + mean) * bright, out)
    out = _blur(out, p_blur, g)
    out = out + noise * torch.randn(out.shape, generator=g).to(out)
    return out.clamp(0.0, 1.0)


def _blur(x: Tensor, p: float, g: torch.Generator | None) -> Tensor:
    """A 3×3 Gaussian blur, σ drawn per image, on a fraction ``p`` of the images."""
    n, c, h, w = x.shape
    sigma = _uniform(n, 0.1, 2.0, g) * h / 224 * 8  # the paper's σ range, at this resolution
    taps = torch.tensor([-1.0, 0.0, 1.0])
    k1 = torch.exp(-taps[None] ** 2 / (2 * sigma[:, None] ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)  # (N, 3)
    k2 = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, 0)[:, None]  # (N·C, 1, 3, 3)
    blurred = F.conv2d(x.reshape(1, n * c, h, w), k2.to(x), padding=1, groups=n * c)
    on = (torch.rand(n, generator=g) < p).view(n, 1, 1, 1).to(x.device)
    return torch.where(on, blurred.view(n, c, h, w), x)
