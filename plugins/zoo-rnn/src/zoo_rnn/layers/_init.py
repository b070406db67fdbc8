"""Parameter initialisation shared by the cells: U(−1/√H, 1/√H), as the torch.nn cells use."""

from __future__ import annotations

import math

from torch import nn

from zoo_core import ConfigError


def uniform_(module: nn.Module, hidden_size: int) -> None:
    """Draw every parameter of ``module`` (layer norms excluded) from U(−1/√H, 1/√H)."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters(recurse=False):
        nn.init.uniform_(p, -bound, bound)


def check_sizes(cls: str, **sizes: int) -> None:
    """Raise ``ConfigError`` naming the first size that is not a positive int."""
    for key, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{cls}: {key} must be a positive int, got {value!r}")
