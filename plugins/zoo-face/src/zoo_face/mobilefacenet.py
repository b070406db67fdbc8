"""MobileFaceNet: an efficient face backbone for mobile devices.

Chen et al., 2018, "MobileFaceNets: Efficient CNNs for Accurate Real-Time Face Verification on
Mobile Devices", Table 1: a 3×3 stride-2 conv and a 3×3 depthwise conv, then inverted-residual
bottlenecks (1×1 expansion t → 3×3 depthwise → linear 1×1 projection; residual when stride 1
and widths match) with PReLU, a 1×1 conv to 512 channels, a *global depthwise convolution*
(a 7×7 depthwise conv without padding, "linear GDConv") in place of global average pooling, and
a linear 1×1 conv to the embedding, batch-normalised. The paper's embedding is 128-d
(preset ``"mobilefacenet-128"``); the default is 512-d like the other backbones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

import zoo_core as zoo

from .images import bad_crops, check_crops

_TABLE1 = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


@dataclass(frozen=True)
class MobileFaceNetConfig:
    """MobileFaceNet hyper-parameters.

    Attributes:
        stem_width: channels of the stem conv and the depthwise conv after it.
        blocks: bottleneck stages as (expansion t, channels c, repeats n, first stride s).
        conv_width: channels of the 1×1 conv before the global depthwise conv.
        embedding_size: width of the embedding.
        in_channels: image channels.
        input_size: side of the square input crop.
        threshold: cosine at or above which two faces are the same person, calibrated on
            verification pairs (set by training code; ``None``: not calibrated).
        feature_size: side of the map the global depthwise conv covers (derived).
    """

    stem_width: int = 64
    blocks: tuple[tuple[int, int, int, int], ...] = _TABLE1
    conv_width: int = 512
    embedding_size: int = 512
    in_channels: int = 3
    input_size: int = 112
    threshold: float | None = None
    feature_size: int = field(init=False)

    def __post_init__(self) -> None:
        if any(len(b) != 4 or min(b) < 1 for b in self.blocks):
            raise zoo.ConfigError(f"blocks={self.blocks!r} must hold (t, c, n, s) tuples of "
                                 "positive integers")
        stride = 2 * math.prod(b[3] for b in self.blocks)
        if self.input_size % stride:
            raise zoo.ConfigError(f"input_size={self.input_size!r} must be divisible by the "
                                 f"total stride {stride}")
        object.__setattr__(self, "feature_size", self.input_size // stride)


class ConvBN(nn.Sequential):
    """Conv → BN (→ PReLU unless ``linear``)."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1, p: int = 0,
                 groups: int = 1, linear: bool = False) -> None:
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, s, p, groups=groups, bias=False),
                                   nn.BatchNorm2d(c_out)]
        if not linear:
            layers.append(nn.PReLU(c_out))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: 1×1 expand → 3×3 depthwise (stride) → linear 1×1 project."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.body = nn.Sequential(ConvBN(c_in, hidden),
                                  ConvBN(hidden, hidden, 3, stride, 1, groups=hidden),
                                  ConvBN(hidden, c_out, linear=True))

    def forward(self, x: Tensor) -> Tensor:                                  # (B, C, H, W)
        out = self.body(x)
        return x + out if self.residual else out


class MobileFaceNet(zoo.Model):
    """MobileFaceNet: (B, 3, 112, 112) images → (B, 512) embeddings (about 1M parameters).

    Example:
        >>> net = zoo.create("model:mobilefacenet")
        >>> net(torch.randn(2, 3, 112, 112)).shape
        torch.Size([2, 512])
    """

    config_class = MobileFaceNetConfig
    contract_opt_outs = {"parameter_count": "the paper's 0.99 M is rounded and counts another "
                         "head: tests/test_backbones.py states the difference"}
    presets = {
        "mobilefacenet": MobileFaceNetConfig(),
        "mobilefacenet-128": MobileFaceNetConfig(embedding_size=128),
        "tiny": MobileFaceNetConfig(stem_width=8, blocks=((2, 8, 1, 2), (2, 16, 2, 2)),
                                    conv_width=32, embedding_size=16, input_size=16),
    }
    supports_grad_checkpointing = True

    def __init__(self, config: MobileFaceNetConfig) -> None:
        super().__init__(config)
        c = config
        self.stem = nn.Sequential(ConvBN(c.in_channels, c.stem_width, 3, 2, 1),
                                  ConvBN(c.stem_width, c.stem_width, 3, 1, 1,
                                         groups=c.stem_width))
        blocks, c_in = [], c.stem_width
        for t, width, n, s in c.blocks:
            for i in range(n):
                blocks.append(Bottleneck(c_in, width, s if i == 0 else 1, t))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.conv = ConvBN(c_in, c.conv_width)
        self.gdconv = ConvBN(c.conv_width, c.conv_width, c.feature_size,
                             groups=c.conv_width, linear=True)
        self.embed = nn.Conv2d(c.conv_width, c.embedding_size, 1, bias=False)
        self.features = nn.BatchNorm1d(c.embedding_size)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.25, mode="fan_out",
                                        nonlinearity="leaky_relu")

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return list(self.blocks)

    def forward(self, images: Tensor) -> Tensor:
        """Embeddings (B, E) of aligned crops (B, C, S, S)."""
        check_crops(images, self.config.in_channels, self.config.input_size)
        x = self.blocks(self.stem(images))                                  # (B, c, S/16, ·)
        x = self.gdconv(self.conv(x))                                       # (B, 512, 1, 1)
        return self.features(self.embed(x).flatten(1))                      # (B, E)

    def example_inputs(self) -> dict[str, Tensor]:
        c = self.config
        return {"images": torch.randn(2, c.in_channels, c.input_size, c.input_size)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        return bad_crops(self.config.in_channels, self.config.input_size)
