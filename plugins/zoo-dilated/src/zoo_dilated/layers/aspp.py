"""Atrous Spatial Pyramid Pooling (DeepLabv3, Chen et al. 2017, arXiv:1706.05587, §3.3).

Parallel branches read the same feature map at several scales and their outputs are
concatenated along channels, then projected by a ``1 × 1`` convolution:

    y = Dropout(P · [B_1x1(x), B_r1(x), B_r2(x), B_r3(x), Up(B_pool(GAP(x)))])

with ``B_r`` a ``3 × 3`` atrous convolution of rate ``r`` (+ BN + ReLU) and ``B_pool`` the
image-level feature: global average pooling, ``1 × 1`` conv, BN, ReLU, bilinearly upsampled
back to ``H × W``. The paper's rates are
(6, 12, 18) at output stride 16 and twice that, (12, 24, 36), at output stride 8.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conv_norm_act import ConvNormAct, make_norm
from .dilated_conv import check_rate


class ASPPPooling(nn.Module):
    """Image-level branch: global average pool → ``1 × 1`` conv → norm → act → upsample."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batchnorm") -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=norm == "none")
        self.bn = make_norm(norm, out_channels)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, H, W)
        y = self.act(self.bn(self.conv(self.pool(x))))  # (B, Cout, 1, 1)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a ``1 × 1`` branch, one ``3 × 3`` branch per rate, the
    image-level branch, concatenated and projected to ``out_channels``.

    Example:
        >>> aspp = ASPP(64, 32, rates=(6, 12, 18))
        >>> aspp(torch.randn(2, 64, 17, 17)).shape
        torch.Size([2, 32, 17, 17])
    """

    def __init__(self, in_channels: int, out_channels: int = 256,
                 rates: Sequence[int] = (12, 24, 36), pooling: bool = True,
                 separable: bool = False, dropout: float = 0.5, norm: str = "batchnorm") -> None:
        super().__init__()
        rates = tuple(check_rate(r, f"ASPP rates[{i}]") for i, r in enumerate(rates))
        self.rates = rates
        self.branches = nn.ModuleList(
            [ConvNormAct(in_channels, out_channels, 1, norm=norm)]
            + [ConvNormAct(in_channels, out_channels, 3, rate=r, norm=norm, separable=separable)
               for r in rates]
        )
        self.pool = ASPPPooling(in_channels, out_channels, norm) if pooling else None
        n = len(self.branches) + int(pooling)
        self.project = ConvNormAct(n * out_channels, out_channels, 1, norm=norm)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, H, W)
        outs = [branch(x) for branch in self.branches]
        if self.pool is not None:
            outs.append(self.pool(x))
        return self.dropout(self.project(torch.cat(outs, dim=1)))  # cat: (B, n·Cout, H, W)
