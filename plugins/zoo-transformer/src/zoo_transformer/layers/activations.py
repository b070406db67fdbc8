"""Activation functions addressed by name in configs (``hidden_act="gelu"``).

``gelu`` is the exact Gaussian error linear unit of Hendrycks & Gimpel 2016,
``x·Φ(x)``; ``gelu_tanh`` is its tanh approximation
``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`` used by ALBERT and GPT-2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

from zoo_core import ConfigError


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_tanh": _gelu_tanh,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": F.relu,
    "silu": F.silu,
}


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation function called ``name``."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]
