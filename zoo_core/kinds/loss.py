"""``loss``: an ``nn.Module`` whose ``forward(input, target)`` returns a scalar.

A loss may own parameters (class centres of margin losses).

Example:
    >>> class Hinge(Loss):
    ...     def forward(self, input, target):     # (B, C) scores, (B,) labels
    ...         margin = 1 - input.gather(1, target[:, None]) + input
    ...         return margin.clamp(min=0).mean()
    ...     def example_inputs(self):
    ...         return torch.randn(4, 3, requires_grad=True), torch.tensor([0, 2, 1, 0])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from ._contract import not_declared


class Loss(nn.Module):
    """Base class of zoo losses. ``contract_opt_outs`` maps a contract check this loss opts
    out of to the reason (see :mod:`zoo_core.kinds._contract`)."""

    contract_opt_outs: ClassVar[Mapping[str, str]] = {}

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        raise NotImplementedError

    def example_inputs(self) -> tuple[Any, Any]:
        """``(input, target)`` for the contract checks; ``input`` should require grad."""
        raise not_declared(self, "example_inputs", "finite")

    def bad_inputs(self) -> list[tuple[Any, Any]]:
        """``(input, target)`` pairs that ``forward`` must refuse with a ``ZooError``."""
        raise not_declared(self, "bad_inputs", "bad_inputs")
