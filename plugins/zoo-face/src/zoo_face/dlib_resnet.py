"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``), as dlib defines it.

King, 2017, "High Quality Face Recognition with Deep Metric Learning" (dlib blog; 99.38% on
LFW): a ResNet-34 variant with 29 convolutions, trained with a pairwise hinge loss on
Euclidean distances (``loss_metric``; two faces are the same person below distance 0.6).

Layers, from ``dnn_face_recognition_ex.cpp``: input 150×150 RGB, ``x = (pixel - mean) / 256``
per channel; a 7×7/2 convolution (no padding), affine, ReLU, 3×3/2 max pool (no padding); four
stages of residual blocks ``relu(x + affine(conv3×3(relu(affine(conv3×3(x))))))`` with 32,
64, 128, 256 and 256 channels (3, 4, 3, 3 and 1 blocks). The first block of every stage but
the first down-samples: its first convolution has stride 2 and no padding, and its shortcut is
a 2×2/2 average pool; where the shortcut and the block disagree in channels or size, dlib's
``add_prev`` adds them as if the smaller were zero-padded at the end. A global average pool
and a 128-d linear layer without bias give the descriptor. "affine" is dlib's frozen batch
norm: ``y = scale · x + shift``.

``config.landmarks`` adds dlib's 5-point shape predictor (see :mod:`zoo_face.dlib_align`), so
that the catalogue entry ``dlib-resnet-v1`` carries the whole recognition side of dlib's chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo

from .dlib_format import STAGES


@dataclass(frozen=True)
class DlibResNetConfig:
    """Attributes:
        widths: channels of the stem and of each stage (dlib: 32, 64, 128, 256, 256).
        blocks: residual blocks per stage (dlib: 3, 4, 3, 3, 1).
        input_size: side of the square chip (dlib: 150).
        embedding_size: descriptor width (dlib: 128).
        threshold: Euclidean distance below which two faces are the same person (dlib: 0.6).
        landmarks: also hold dlib's 5-point shape predictor (levels, trees, splits, pixels).
    """

    widths: tuple[int, ...] = tuple(w for w, _, _ in STAGES)
    blocks: tuple[int, ...] = tuple(b for _, b, _ in STAGES)
    input_size: int = 150
    embedding_size: int = 128
    threshold: float = 0.6
    landmarks: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.blocks) or not all(self.blocks):
            raise zoo.ConfigError(f"widths={self.widths!r} and blocks={self.blocks!r} must have "
                                  "one positive entry per stage")
        if self.input_size < 32:
            raise zoo.ConfigError(f"input_size={self.input_size!r} is too small: at least 32")
        if self.landmarks is not None and len(self.landmarks) != 4:
            raise zoo.ConfigError(f"landmarks={self.landmarks!r} must be (levels, trees, "
                                  "splits, feature pixels)")


class Affine(nn.Module):
    """A convolution followed by dlib's affine layer (per-channel ``scale · x + shift``)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int) -> None:
        super().__init__()
        self.stride, self.padding = stride, (k // 2 if stride == 1 else 0)  # dlib's default
        self.weight = nn.Parameter(torch.empty(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = nn.Parameter(torch.ones(c_out))
        self.shift = nn.Parameter(torch.zeros(c_out))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        # scale·(W*x + b) + shift folded into one convolution: (scale·W)*x + (scale·b + shift)
        w = self.weight * self.scale[:, None, None, None]
        return F.conv2d(x, w, self.bias * self.scale + self.shift, self.stride, self.padding)


def _add_padded(a: Tensor, b: Tensor) -> Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, the smaller zero-padded at the end."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: Tensor) -> Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class Block(nn.Module):
    """``relu(shortcut + affine(conv(relu(affine(conv(x))))))``; down: stride 2, pooled shortcut."""

    def __init__(self, c_in: int, c_out: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = Affine(c_in, c_out, 3, 2 if down else 1)
        self.conv2 = Affine(c_out, c_out, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(y, shortcut))


class DlibResNet(zoo.Model):
    """dlib's face descriptor network; :meth:`embed` takes dlib's 150×150 RGB chips.

    Example:
        >>> net = zoo.load("dlib-resnet-v1")
        >>> net.embed(chips).shape            # chips: uint8 (B, 150, 150, 3), RGB
        torch.Size([B, 128])
    """

    config_class = DlibResNetConfig
    contract_opt_outs = {"parameter_count": "dlib publishes no parameter count; test_dlib.py "
                                            "loads every tensor of the published .dat strictly"}
    presets = {"default": DlibResNetConfig(),
               "tiny": DlibResNetConfig(widths=(4, 8), blocks=(1, 1), input_size=40,
                                        embedding_size=16)}

    def __init__(self, config: DlibResNetConfig) -> None:
        super().__init__(config)
        self.register_buffer("mean", torch.tensor([122.782, 117.001, 104.298]))
        w = config.widths
        self.stem = Affine(3, w[0], 7, 2)
        self.blocks = nn.Sequential(*[  # every stage but the first opens by down-sampling
            Block(w[s - 1] if s and not b else w[s], w[s], down=bool(s and not b))
            for s in range(len(w)) for b in range(config.blocks[s])])
        self.fc = nn.Linear(w[-1], config.embedding_size, bias=False)
        if config.landmarks is not None:
            levels, trees, splits, pixels = config.landmarks
            self.landmarks = _landmark_buffers(levels, trees, splits, pixels)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) float RGB in 0…255 → (B, embedding_size) descriptors."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise zoo.InputError(f"images of shape {tuple(images.shape)!r} must be (B, 3, S, S) "
                                 "float RGB in 0..255; for uint8 chips (B, S, S, 3) use .embed()")
        x = (images - self.mean[:, None, None]) / 256.0  # (B, 3, 150, 150), dlib's input layer
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)     # (B, 32, 35, 35)
        x = self.blocks(x)                                # (B, 256, 2, 2)
        return self.fc(x.mean(dim=(2, 3)))                # (B, 128)

    @torch.inference_mode()
    def embed(self, chips: Any) -> Tensor:
        """Descriptors of face chips: uint8 (B, S, S, 3) RGB (``dlib.get_face_chip``'s output,
        numpy or torch), or one chip (S, S, 3); returns float32 (B, 128) on the CPU."""
        t = torch.as_tensor(np.asarray(chips)) if not isinstance(chips, Tensor) else chips
        size = self.config.input_size
        if t.dim() == 3:
            t = t[None]
        if t.dtype != torch.uint8 or t.dim() != 4 or tuple(t.shape[1:]) != (size, size, 3):
            raise zoo.InputError(
                f"chips must be uint8 of shape (B, {size}, {size}, 3), RGB, got "
                f"{t.dtype} {tuple(t.shape)!r}; extract them with zoo_face.dlib_align.face_chip "
                f"(or dlib.get_face_chip(img, shape, size={size}, padding=0.25))")
        p = next(self.parameters())
        x = t.to(p.device).permute(0, 3, 1, 2).to(p.dtype).contiguous(
            memory_format=torch.channels_last)
        return self(x).float().cpu()

    def example_inputs(self) -> dict[str, Any]:
        s = self.config.input_size
        return {"images": torch.rand(2, 3, s, s) * 255}

    def bad_inputs(self) -> list[dict[str, Any]]:
        s = self.config.input_size
        return [{"images": torch.rand(3, s, s)}, {"images": torch.rand(2, 1, s, s)}]


def _landmark_buffers(levels: int, trees: int, splits: int, pixels: int) -> nn.Module:
    holder = nn.Module()
    points = 5
    shapes = {"mean_shape": ((2 * points,), torch.float32),
              "anchors": ((levels, pixels), torch.int64),
              "deltas": ((levels, pixels, 2), torch.float32),
              "split_a": ((levels, trees, splits), torch.int64),
              "split_b": ((levels, trees, splits), torch.int64),
              "threshold": ((levels, trees, splits), torch.float32),
              "leaves": ((levels, trees, splits + 1, 2 * points), torch.float32)}
    for name, (shape, dtype) in shapes.items():
        holder.register_buffer(name, torch.zeros(shape, dtype=dtype))
    return holder
