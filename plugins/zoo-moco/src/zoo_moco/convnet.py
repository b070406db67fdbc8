"""A small convolutional encoder for low-resolution images (8×8 digits, 32×32 CIFAR).

Blocks ``conv3×3 → BatchNorm → ReLU``, the first at stride 1 and the others at stride 2,
then global average pooling: ``x`` (B, C, H, W) → features (B, widths[-1]). It has batch
normalisation on purpose: MoCo's shuffled BN (He et al. 2020, Section 3.3) is about encoders
that have it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from zoo_core import ConfigError, InputError, Model


@dataclass(frozen=True)
class ConvNetConfig:
    """``widths``: output channels of each block; ``in_channels``: image channels."""

    in_channels: int = 1
    widths: tuple[int, ...] = (32, 64, 128)

    def __post_init__(self) -> None:
        if not self.widths or min(self.widths) < 1 or self.in_channels < 1:
            raise ConfigError(f"widths {self.widths!r} and in_channels {self.in_channels!r} "
                              "must be positive, with at least one block")


PRESETS = {"tiny": ConvNetConfig(widths=(4, 8)), "digits": ConvNetConfig(),
           "cifar": ConvNetConfig(in_channels=3, widths=(64, 128, 256, 512))}


class ConvNet(Model):
    """Conv-BN-ReLU blocks and global average pooling; :attr:`num_features` outputs."""

    config_class = ConvNetConfig
    presets: ClassVar[dict[str, ConvNetConfig]] = PRESETS
    contract_opt_outs: ClassVar[dict[str, str]] = {
        "parameter_count": "a small backbone of this plugin's own, for tests and the digits "
                           "run: no paper or peer publishes its count"}

    def __init__(self, config: ConvNetConfig) -> None:
        super().__init__(config)
        blocks: list[nn.Module] = []
        c_in = config.in_channels
        for i, c_out in enumerate(config.widths):
            blocks += [nn.Conv2d(c_in, c_out, 3, stride=1 if i == 0 else 2, padding=1,
                                 bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.num_features = config.widths[-1]

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, F)
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise InputError(f"x must be (batch, {self.config.in_channels}, H, W), got shape "
                             f"{tuple(x.shape)!r}")
        return self.features(x).mean(dim=(2, 3))

    def example_inputs(self) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(0)
        return {"x": torch.randn(4, self.config.in_channels, 8, 8, generator=g)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        x = self.example_inputs()["x"]
        return [{"x": x[0]}, {"x": x.repeat(1, 2, 1, 1)}]
