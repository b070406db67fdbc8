"""Convolution → normalisation → activation, with norm and activation chosen by name.

The unit of every ResNet/DeepLab head: ``y = act(norm(W *_r x))`` (Ioffe & Szegedy 2015 for
batch norm). The convolution carries no bias when a norm follows, since the norm's shift
absorbs it.
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo_core import ConfigError

from .dilated_conv import check_rate, same_padding

NORMS = ("batchnorm", "groupnorm", "none")
ACTS = ("relu", "gelu", "silu", "none")


def make_norm(name: str, channels: int) -> nn.Module:
    """A norm layer by name: ``batchnorm``, ``groupnorm`` (32 groups or fewer) or ``none``."""
    if name == "batchnorm":
        return nn.BatchNorm2d(channels)
    if name == "groupnorm":
        groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if name == "none":
        return nn.Identity()
    raise ConfigError(f"norm={name!r} is not known; valid norms: {NORMS}")


def make_act(name: str) -> nn.Module:
    """An activation by name: ``relu``, ``gelu``, ``silu`` or ``none``."""
    table = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "none": nn.Identity}
    if name not in table:
        raise ConfigError(f"act={name!r} is not known; valid activations: {ACTS}")
    return table[name]()


class ConvNormAct(nn.Module):
    """``act(norm(conv(x)))`` with "same" padding; ``separable`` factorises a ``k > 1`` conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, rate: int = 1,
                 norm: str = "batchnorm", act: str = "relu", separable: bool = False) -> None:
        super().__init__()
        check_rate(rate, "ConvNormAct rate")
        self.conv: nn.Module
        if separable and kernel_size > 1:
            from .separable import SeparableAtrousConv2d

            self.conv = SeparableAtrousConv2d(in_channels, out_channels, kernel_size, rate,
                                              norm=norm, act=act, bias=norm == "none")
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                                  padding=same_padding(kernel_size, rate, "ConvNormAct"),
                                  dilation=rate, bias=norm == "none")
        self.bn = make_norm(norm, out_channels)
        self.act = make_act(act)

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, H, W)
        return self.act(self.bn(self.conv(x)))
