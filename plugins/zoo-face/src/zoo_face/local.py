"""Locally connected 2-D layers: a convolution whose weights are not shared across positions.

Each output position ``p`` (or each region of positions, when weights are shared within
``share × share`` blocks, as DeepID's third layer does) has its own filter bank
``W_p ∈ R^{C_out × C_in k²}`` and bias; ``y[:, :, p] = W_p · unfold(x)[:, :, p] + b_p``.
All positions run as one batched contraction (``unfold`` + ``einsum``), not a loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo


class LocallyConnected2d(nn.Module):
    """Unshared (or block-shared) convolution over a fixed input size.

    Args:
        in_channels, out_channels, kernel_size, stride: as for ``nn.Conv2d`` (no padding).
        input_size: (H, W) of the input: positions are fixed by it.
        share: positions in each ``share × share`` block of the output share one filter bank
            (1: fully unshared).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 input_size: tuple[int, int], stride: int = 1, share: int = 1) -> None:
        super().__init__()
        h = (input_size[0] - kernel_size) // stride + 1
        w = (input_size[1] - kernel_size) // stride + 1
        if h < 1 or w < 1:
            raise zoo.ConfigError(f"a {kernel_size}×{kernel_size} locally connected layer "
                                  f"does not fit its input {input_size!r}; use a larger input")
        self.kernel_size, self.stride, self.output_size = kernel_size, stride, (h, w)
        rows, cols = math.ceil(h / share), math.ceil(w / share)
        fan_in = in_channels * kernel_size**2
        self.weight = nn.Parameter(torch.empty(rows * cols, out_channels, fan_in))
        self.bias = nn.Parameter(torch.zeros(rows * cols, out_channels))
        nn.init.kaiming_uniform_(self.weight.view(-1, fan_in), a=math.sqrt(5))
        region = (torch.arange(h)[:, None] // share) * cols + torch.arange(w)[None] // share
        self.register_buffer("region", region.flatten(), persistent=False)  # (h·w,)

    def forward(self, x: Tensor) -> Tensor:                         # (B, C_in, H, W)
        cols = F.unfold(x, self.kernel_size, stride=self.stride)    # (B, C_in k², h·w)
        weight, bias = self.weight[self.region], self.bias[self.region]  # (h·w, C_out, ·)
        out = torch.einsum("bkp,pok->bop", cols, weight) + bias.t()
        return out.view(x.shape[0], -1, *self.output_size)          # (B, C_out, h, w)

    def extra_repr(self) -> str:
        banks, out_channels, fan_in = self.weight.shape
        return (f"fan_in={fan_in}, out_channels={out_channels}, kernel_size={self.kernel_size}"
                f", stride={self.stride}, output_size={self.output_size}, banks={banks}")
