"""Causal dilated 1-D convolutions stacked WaveNet-style (van den Oord et al. 2016,
arXiv:1609.03499).

A causal convolution pads ``r (k - 1)`` steps on the left only, so output ``t`` reads inputs
``t - r (k - 1) … t`` and never the future. Each residual block applies the gated activation
of eq. (2),

    z = tanh(W_f *_r x) ⊙ σ(W_g *_r x),

then a ``1 × 1`` convolution to the residual path (``x + W_res z``) and another to the skip
path; the stack sums the skips. With rates 1, 2, …, 2^(L-1) and ``k = 2`` the receptive field
is ``(k - 1) Σ r + 1 = 2^L`` steps per repeat of the rate cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from zoo_core import ConfigError

from .dilated_conv import check_rate


class CausalConv1d(nn.Conv1d):
    """``nn.Conv1d`` with left-only padding ``rate (k - 1)``: output length = input length."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, rate: int = 1,
                 bias: bool = True) -> None:
        check_rate(rate, "CausalConv1d rate")
        super().__init__(in_channels, out_channels, kernel_size, dilation=rate, bias=bias)
        self.left_pad = rate * (kernel_size - 1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T) -> (B, C', T)
        return super().forward(F.pad(x, (self.left_pad, 0)))


class GatedResidualBlock(nn.Module):
    """WaveNet block: gated causal dilated conv, residual ``1 × 1`` and skip ``1 × 1``."""

    def __init__(self, channels: int, skip_channels: int, kernel_size: int = 2,
                 rate: int = 1) -> None:
        super().__init__()
        self.filter = CausalConv1d(channels, channels, kernel_size, rate)
        self.gate = CausalConv1d(channels, channels, kernel_size, rate)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # (B, C, T) -> (B, C, T), (B, S, T)
        z = self.filter(x).tanh() * self.gate(x).sigmoid()
        return x + self.residual(z), self.skip(z)


class DilatedCausalStack(nn.Module):
    """A stack of gated residual blocks with rates repeated ``repeats`` times.

    Example:
        >>> stack = DilatedCausalStack(16, rates=(1, 2, 4, 8), repeats=2)
        >>> stack.receptive_field
        31
        >>> stack(torch.randn(2, 16, 100)).shape      # sum of skips
        torch.Size([2, 16, 100])
    """

    def __init__(self, channels: int, skip_channels: int | None = None, kernel_size: int = 2,
                 rates: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
                 repeats: int = 1) -> None:
        super().__init__()
        if not isinstance(kernel_size, int) or kernel_size < 2:
            raise ConfigError(f"kernel_size={kernel_size!r}: a causal dilated stack needs "
                                "kernel_size ≥ 2 (WaveNet uses 2)")
        if not isinstance(repeats, int) or repeats < 1:
            raise ConfigError(f"repeats={repeats!r} must be an integer ≥ 1")
        if not rates:
            raise ConfigError("rates=() is empty; give at least one rate, e.g. (1, 2, 4, 8)")
        rates = [check_rate(r, f"rates[{i}]") for i, r in enumerate(rates)] * repeats
        self.rates = tuple(rates)
        self.kernel_size = kernel_size
        self.blocks = nn.ModuleList(
            GatedResidualBlock(channels, skip_channels or channels, kernel_size, r) for r in rates
        )

    @property
    def receptive_field(self) -> int:
        """Steps of input that reach one output: ``(k - 1) Σ r + 1``."""
        return (self.kernel_size - 1) * sum(self.rates) + 1

    def forward(self, x: Tensor) -> Tensor:  # (B, C, T) -> (B, S, T)
        x, total = self.blocks[0](x)
        for block in self.blocks[1:]:
            x, skip = block(x)
            total = total + skip
        return total
