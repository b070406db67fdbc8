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

from typing import Any

from torch import Tensor, nn


class Loss(nn.Module):
    """Base class of zoo losses."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        raise NotImplementedError

    def example_inputs(self) -> tuple[Any, Any]:
        """``(input, target)`` for the contract checks; ``input`` should require grad."""
        raise NotImplementedError(f"{type(self).__name__} must implement example_inputs()")
