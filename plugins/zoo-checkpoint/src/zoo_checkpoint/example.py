"""A small residual MLP with declared checkpointing blocks, for tests and the contract check.

Block ``i``: ``x + W2 · dropout(gelu(W1 · norm(x)))`` (a pre-norm residual feed-forward block,
He et al. 2016 / Vaswani et al. 2017), with ``norm`` LayerNorm or BatchNorm1d.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

import zoo_core as zoo


@dataclass(frozen=True)
class ResidualMLPConfig:
    width: int = 8
    hidden: int = 16
    depth: int = 4
    dropout: float = 0.1
    batchnorm: bool = False


class Block(nn.Module):
    def __init__(self, c: ResidualMLPConfig) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(c.width) if c.batchnorm else nn.LayerNorm(c.width)
        self.fc1 = nn.Linear(c.width, c.hidden)
        self.fc2 = nn.Linear(c.hidden, c.width)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, scale: Tensor | None = None) -> Tensor:  # (B, W) -> (B, W)
        h = self.fc2(self.drop(nn.functional.gelu(self.fc1(self.norm(x)))))
        return x + (h if scale is None else h * scale)


class ResidualMLP(zoo.Model):
    """Embedding-free residual MLP: (B, W) -> (B, W)."""

    config_class = ResidualMLPConfig
    presets = {"tiny": ResidualMLPConfig()}
    supports_grad_checkpointing = True

    def __init__(self, config: ResidualMLPConfig) -> None:
        super().__init__(config)
        self.inp = nn.Linear(config.width, config.width)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.head = nn.Linear(config.width, 1)

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return list(self.blocks)

    def forward(self, x: Tensor, scale: Tensor | None = None) -> Tensor:
        h = self.inp(x)  # (B, W)
        for block in self.blocks:
            h = block(h, scale=scale)
        return self.head(h)  # (B, 1)

    def example_inputs(self) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(0)
        return {"x": torch.randn(6, self.config.width, generator=g)}
