"""Depthwise-separable atrous convolution (DeepLabv3+, Chen et al. ECCV 2018, §3.1).

A dilated ``k × k`` convolution factorised into a depthwise dilated convolution (one filter per
channel, ``groups = C_in``) followed by a pointwise ``1 × 1`` convolution:

    y = W_pw · (W_dw *_r x)

It costs ``k² C_in + C_in C_out`` weights instead of ``k² C_in C_out``. As in the paper, a
norm and activation may sit between the two convolutions.
"""

from __future__ import annotations

from torch import Tensor, nn

from .conv_norm_act import make_act, make_norm
from .dilated_conv import check_rate, same_padding


class SeparableAtrousConv2d(nn.Module):
    """Depthwise dilated ``k × k`` conv → (norm → act) → pointwise ``1 × 1`` conv.

    Example:
        >>> conv = SeparableAtrousConv2d(32, 64, kernel_size=3, rate=12)
        >>> conv(torch.randn(2, 32, 40, 40)).shape
        torch.Size([2, 64, 40, 40])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, rate: int = 1,
                 norm: str = "batchnorm", act: str = "relu", bias: bool = False) -> None:
        super().__init__()
        check_rate(rate, "SeparableAtrousConv2d rate")
        pad = same_padding(kernel_size, rate, "SeparableAtrousConv2d")
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=pad,
                                   dilation=rate, groups=in_channels, bias=False)
        self.norm = make_norm(norm, in_channels)
        self.act = make_act(act)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, H, W)
        return self.pointwise(self.act(self.norm(self.depthwise(x))))
