"""``transform``: ``apply(model, **options) -> model``, e.g. gradient checkpointing.

Example:
    >>> class Freeze(Transform):
    ...     def apply(self, model, **options):
    ...         for p in model.parameters():
    ...             p.requires_grad_(False)
    ...         return model
    ...     def example_cases(self):
    ...         return [(nn.Linear(4, 2), {"input": torch.randn(3, 4)})]
    ...     contract_opt_outs = {"bad_inputs": "apply() takes no option"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn

from ._contract import not_declared


class Transform:
    """Base class of zoo transforms: rewrite a model in place and return it.
    ``contract_opt_outs`` maps a contract check this transform opts out of to the reason."""

    contract_opt_outs: ClassVar[Mapping[str, str]] = {}

    def apply(self, model: nn.Module, **options: Any) -> nn.Module:
        raise NotImplementedError

    def example_cases(self) -> list[tuple[nn.Module, dict[str, Any]]]:
        """``(model, forward kwargs)`` pairs whose outputs ``apply`` must not change."""
        raise not_declared(self, "example_cases", "preserves")

    def bad_inputs(self) -> list[dict[str, Any]]:
        """``apply`` options that must raise a ``ZooError``."""
        raise not_declared(self, "bad_inputs", "bad_inputs")
