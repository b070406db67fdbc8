"""zoo-checkpoint: gradient checkpointing policies for every zoo model, measured.

``zoo.create("transform:checkpoint", policy="sqrt").apply(model)`` (or
``model.set_grad_checkpointing("sqrt")``) checkpoints the model's declared blocks;
:func:`profile` measures saved-activation bytes and step time per policy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Checkpoint", "profile", "saved_bytes"]


def __getattr__(name: str) -> Any:  # keep `import zoo_checkpoint` free of torch
    if name == "Checkpoint":
        from .transform import Checkpoint

        return Checkpoint
    if name in ("profile", "saved_bytes"):
        from . import profiler

        return getattr(profiler, name)
    raise AttributeError(f"module 'zoo_checkpoint' has no attribute {name!r}")
