"""The six kinds of component and their interfaces.

Each kind lives in its own module, imported on first use: ``Model``, ``Loss``, ``Metric`` and
``Transform`` import torch; ``Tokenizer`` and ``Kernel`` do not.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {"Model": "model", "Tokenizer": "tokenizer", "Loss": "loss", "Metric": "metric",
            "Kernel": "kernel", "Backend": "kernel", "Transform": "transform"}

__all__ = sorted(_MODULES)


def __getattr__(attr: str) -> Any:
    if attr in _MODULES:
        return getattr(importlib.import_module(f".{_MODULES[attr]}", __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
