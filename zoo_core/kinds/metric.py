"""``metric``: a streaming metric whose state is tensors that add up.

``update`` accumulates, ``compute`` reads, ``merge`` adds another instance's state,
``sync`` all-reduces the state over ``torch.distributed``. Calling the metric, as in
torchmetrics, updates it and returns the batch's own value: ``metric(preds, target)``.

Example:
    >>> class Accuracy(Metric):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.add_state("correct", torch.zeros((), dtype=torch.long))
    ...         self.add_state("total", torch.zeros((), dtype=torch.long))
    ...     def update(self, preds, target):
    ...         self.correct += (preds == target).sum()
    ...         self.total += target.numel()
    ...     def compute(self):
    ...         return {"accuracy": self.correct / self.total}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from .._errors import ZooError
from ._contract import not_declared


class Metric:
    """Base class of zoo metrics. ``contract_opt_outs`` maps a contract check this metric
    opts out of to the reason (see :mod:`zoo_core.kinds._contract`)."""

    contract_opt_outs: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        self._defaults: dict[str, Tensor] = {}

    def add_state(self, name: str, default: Tensor) -> None:
        """Declare state ``name`` starting at ``default`` (``self.<name>``, reset to a copy of
        ``default``); states are summed by ``merge``, ``sync`` and ``__call__``."""
        self._defaults[name] = default.detach().clone()
        setattr(self, name, default.detach().clone())

    @property
    def state(self) -> dict[str, Tensor]:
        return {n: getattr(self, n) for n in self._defaults}

    def update(self, preds: Any, target: Any) -> None:
        raise NotImplementedError

    def __call__(self, preds: Any, target: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Update with one batch and return ``compute()`` of that batch alone (torchmetrics'
        ``forward``): the state seen so far is set aside, the batch is computed on a fresh
        state, then the two states are added, since states add up."""
        seen = self.state
        self.reset()
        try:
            self.update(preds, target, *args, **kwargs)  # extra arguments go to update
            value = self.compute()
        finally:
            batch = self.state
            for name, before in seen.items():
                added = batch[name] - self._defaults[name].to(batch[name].device)
                setattr(self, name, before + added.to(before.device))
        return value

    def compute(self) -> dict[str, Any]:
        raise NotImplementedError

    def reset(self) -> None:
        for name, default in self._defaults.items():
            setattr(self, name, default.clone().to(getattr(self, name).device))

    def merge(self, other: Metric) -> Metric:
        """Add ``other``'s state into this one (as if this metric had seen its data too)."""
        if type(other) is not type(self) or other._defaults.keys() != self._defaults.keys():
            raise ZooError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        for name in self._defaults:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine.shape != theirs.shape:
                raise ZooError(f"cannot merge state {name!r}: shapes {tuple(mine.shape)} and "
                               f"{tuple(theirs.shape)} differ (different configurations?)")
            setattr(self, name, mine + theirs.to(mine.device))
        return self

    def sync(self, group: Any = None) -> Metric:
        """All-reduce (sum) the state across ``torch.distributed`` ranks; no-op when single."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        for name in self._defaults:
            t = getattr(self, name).clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
            setattr(self, name, t)
        return self

    def to(self, device: torch.device | str) -> Metric:
        for name in self._defaults:
            setattr(self, name, getattr(self, name).to(device))
        return self

    def example_batches(self) -> list[tuple[Any, Any]]:
        """A few ``(preds, target)`` batches for the contract checks."""
        raise not_declared(self, "example_batches", "streaming")

    def bad_inputs(self) -> list[tuple[Any, Any]]:
        """``(preds, target)`` pairs that ``update`` must refuse with a ``ZooError``."""
        raise not_declared(self, "bad_inputs", "bad_inputs")
