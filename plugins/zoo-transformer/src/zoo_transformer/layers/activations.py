"""Activation functions addressed by name in configs (``hidden_act="gelu"``).

``gelu`` is the exact Gaussian error linear unit of Hendrycks & Gimpel 2016,
``x·Φ(x)``; ``gelu_tanh`` is its tanh approximation
``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`` used by ALBERT and GPT-2.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
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


# the same, overwriting their input (inference: no autograd needs it)
IN_PLACE: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": torch.ops.aten.gelu_,
    "gelu_tanh": lambda x: torch.ops.aten.gelu_(x, approximate="tanh"),
    "relu": torch.relu_,
    "silu": lambda x: F.silu(x, inplace=True),
}
for _alias in ("gelu_new", "gelu_pytorch_tanh"):
    IN_PLACE[_alias] = IN_PLACE["gelu_tanh"]


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation function called ``name``."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]
