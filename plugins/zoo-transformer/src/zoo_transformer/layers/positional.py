"""Sinusoidal position encodings, Vaswani et al. 2017 (arXiv:1706.03762), Section 3.5.

``PE(pos, 2i) = sin(pos / 10000^(2i/d))`` and ``PE(pos, 2i+1) = cos(pos / 10000^(2i/d))``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_table(length: int, dim: int) -> Tensor:
    """The ``(length, dim)`` table of Section 3.5 (``dim`` even)."""
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)  # (L, 1)
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * rate)
    table[:, 1::2] = torch.cos(pos * rate)[:, : dim // 2]
    return table.float()


class SinusoidalPositions(nn.Module):
    """Fixed encodings (a non-persistent buffer: nothing to learn, nothing saved)."""

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("table", sinusoidal_table(max_len, dim), persistent=False)

    def forward(self, positions: Tensor) -> Tensor:  # (B, S) int -> (B, S, dim)
        return self.table[positions]
