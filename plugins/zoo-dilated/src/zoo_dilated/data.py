"""A procedural segmentation set: textured shapes that occlude each other.

Each image holds 2–4 shapes of five classes (disk, square, triangle, ring, cross) on a
plain background of a random colour with mild noise (class 0). Each shape's texture and
colours are drawn independently of its class (stripes at a random angle and period,
checkerboard, dots or two-colour noise), so a pixel's class is decided by the shape around
it, not by its colour: a model needs a receptive field that spans the object. Later shapes
occlude earlier ones. Pixels within ``border`` of a class boundary are labelled
``ignore_index`` (255), as in PASCAL VOC. Sample ``i`` depends only on ``(seed, i)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from zoo_core import InputError

CLASSES = ("background", "disk", "square", "triangle", "ring", "cross")
IGNORE_INDEX = 255


class SyntheticShapes(Dataset[tuple[Tensor, Tensor]]):
    """``(image (3, H, W) float, label (H, W) long)`` pairs, generated on access.

    Example:
        >>> data = SyntheticShapes(1000, size=64, seed=0)
        >>> image, label = data[0]
        >>> image.shape, label.shape, sorted(set(label.unique().tolist()))[-1]
        (torch.Size([3, 64, 64]), torch.Size([64, 64]), 255)
    """

    num_classes = len(CLASSES)

    def __init__(self, length: int, size: int = 64, seed: int = 0, border: int = 1,
                 max_shapes: int = 4) -> None:
        if size < 16:
            raise InputError(f"size={size!r} is too small to draw shapes; use size ≥ 16")
        if length < 1 or border < 0 or max_shapes < 2:
            raise InputError(f"length={length!r} must be ≥ 1, border={border!r} ≥ 0 and "
                                f"max_shapes={max_shapes!r} ≥ 2")
        self.length, self.size, self.seed = length, size, seed
        self.border, self.max_shapes = border, max_shapes

    def __len__(self) -> int:
        return self.length

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All samples at once: images ``(N, 3, H, W)`` and labels ``(N, H, W)``."""
        images, labels = zip(*(self[i] for i in range(self.length)), strict=True)
        return torch.stack(images), torch.stack(labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index!r} out of range for {self.length} samples")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        n = self.size
        yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float32),
                                torch.arange(n, dtype=torch.float32), indexing="ij")
        image = _texture(yy, xx, g, kind=4)  # plain colour + noise
        label = torch.zeros(n, n, dtype=torch.long)
        for _ in range(int(torch.randint(2, self.max_shapes + 1, (1,), generator=g))):
            cls = int(torch.randint(1, len(CLASSES), (1,), generator=g))
            cy, cx = (torch.rand(2, generator=g) * n * 0.8 + n * 0.1).tolist()
            radius = float(torch.empty(1).uniform_(n / 6, n / 3.5, generator=g))
            angle = float(torch.rand(1, generator=g)) * math.pi
            mask = _shape(CLASSES[cls], yy - cy, xx - cx, radius, angle)
            image = torch.where(mask, _texture(yy, xx, g), image)
            label[mask] = cls
        if self.border:
            label[_boundary(label, self.border)] = IGNORE_INDEX
        return image, label


def _shape(kind: str, dy: Tensor, dx: Tensor, r: float, angle: float) -> Tensor:
    u = dx * math.cos(angle) + dy * math.sin(angle)  # rotated coordinates
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    if kind == "disk":
        return u**2 + v**2 <= r**2
    if kind == "square":
        return (u.abs() <= r * 0.8) & (v.abs() <= r * 0.8)
    if kind == "ring":
        d2 = u**2 + v**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    if kind == "cross":
        arm = r / 3
        return ((u.abs() <= r) & (v.abs() <= arm)) | ((v.abs() <= r) & (u.abs() <= arm))
    inside = torch.ones_like(u, dtype=torch.bool)  # triangle: three half-planes
    for k in range(3):
        a = 2 * math.pi * k / 3
        inside &= u * math.cos(a) + v * math.sin(a) <= r / 2
    return inside


def _texture(yy: Tensor, xx: Tensor, g: torch.Generator, kind: int | None = None) -> Tensor:
    """A random two-colour pattern with noise: (3, H, W) in about [0, 1]."""
    drawn = int(torch.randint(0, 4, (1,), generator=g))
    kind = drawn if kind is None else kind
    period = float(torch.empty(1).uniform_(3.0, 8.0, generator=g))
    angle = float(torch.rand(1, generator=g)) * math.pi
    if kind == 0:  # stripes
        t = (torch.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0)
    elif kind == 1:  # checkerboard
        t = ((xx // period + yy // period) % 2) == 0
    elif kind == 2:  # dots
        t = ((xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2) < (period / 3) ** 2
    elif kind == 3:  # two-colour noise
        t = torch.rand(xx.shape, generator=g) > 0.5
    else:  # plain
        t = torch.zeros(xx.shape, dtype=torch.bool)
    a, b = torch.rand(2, 3, 1, 1, generator=g)
    image = torch.where(t, a, b)
    return (image + 0.1 * torch.randn(image.shape, generator=g)).float()


def _boundary(label: Tensor, width: int) -> Tensor:
    """Pixels within ``width`` (Chebyshev distance) of a change of class."""
    edge = torch.zeros(label.shape, dtype=torch.float32)
    dy = (label[1:] != label[:-1]).float()  # (H-1, W): between rows y and y+1
    dx = (label[:, 1:] != label[:, :-1]).float()
    edge[1:] = torch.maximum(edge[1:], dy)
    edge[:-1] = torch.maximum(edge[:-1], dy)
    edge[:, 1:] = torch.maximum(edge[:, 1:], dx)
    edge[:, :-1] = torch.maximum(edge[:, :-1], dx)
    if width > 1:
        edge = F.max_pool2d(edge[None, None], 2 * width - 1, 1, width - 1)[0, 0]
    return edge > 0
