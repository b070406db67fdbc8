"""``transform``: ``apply(model, **options) -> model``, e.g. gradient checkpointing.

Example:
    >>> class Freeze(Transform):
    ...     def apply(self, model, **options):
    ...         for p in model.parameters():
    ...             p.requires_grad_(False)
    ...         return model
"""

from __future__ import annotations

from typing import Any

from torch import nn


class Transform:
    """Base class of zoo transforms: rewrite a model in place and return it."""

    def apply(self, model: nn.Module, **options: Any) -> nn.Module:
        raise NotImplementedError
