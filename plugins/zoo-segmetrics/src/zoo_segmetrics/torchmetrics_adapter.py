"""A zoo metric as a ``torchmetrics.Metric``, so that it joins a ``MetricCollection``.

torchmetrics (installed separately: ``pip install 'zoo-segmetrics[torchmetrics]'``) keeps the
states: the zoo metric's summed states are registered with ``dist_reduce_fx="sum"``, so
``forward`` (the batch value), ``compute`` (everything seen), ``reset``, ``.to(device)``,
distributed sync and compute groups are torchmetrics' own. ``update`` and ``compute`` run the
zoo metric on those states. A dict result (``metric:segmentation``'s scores) is flattened by
the collection into its keys, prefixed with the metric's name in the collection
(``zoo_mean_iou``, ``zoo_pixel_accuracy``, ...); floats become tensors.

Example:
    >>> from torchmetrics import MetricCollection
    >>> from torchmetrics.classification import MulticlassJaccardIndex
    >>> seg = zoo.create("metric:segmentation", num_classes=21)
    >>> metrics = MetricCollection({"jaccard": MulticlassJaccardIndex(21),
    ...                             "zoo": seg.as_torchmetric()})
    >>> metrics.update(logits, target)
    >>> metrics.compute()["zoo_mean_iou"]           # the collection prefixes dict keys
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torchmetrics
from torch import Tensor

import zoo_core as zoo


class TorchMetric(torchmetrics.Metric):
    """``metric`` (a zoo metric) as a torchmetrics metric; it starts with no data seen.

    Args:
        metric: the zoo metric; a copy is kept and reset, the original is not touched.
        **kwargs: torchmetrics' ``Metric`` options (``sync_on_compute``, ...).
    """

    full_state_update = False     # the states add up: forward needs only the batch's

    def __init__(self, metric: zoo.Metric, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(metric, zoo.Metric):
            raise zoo.InputError(f"TorchMetric wraps a zoo metric (zoo.create('metric:...')), "
                                 f"got {type(metric).__name__}")
        fresh = copy.deepcopy(metric)
        fresh.reset()
        object.__setattr__(self, "metric", fresh)   # not a module: its states are ours
        self._names = list(fresh.state)
        for name, default in fresh.state.items():
            self.add_state(name, default=default.clone(), dist_reduce_fx="sum")

    def _lend(self) -> None:
        for name in self._names:
            setattr(self.metric, name, getattr(self, name))

    def update(self, preds: Tensor, target: Tensor) -> None:
        self._lend()
        self.metric.update(preds, target)
        for name in self._names:
            setattr(self, name, getattr(self.metric, name))

    def compute(self) -> Any:
        self._lend()
        value = self.metric.compute()
        if isinstance(value, dict):
            return {k: torch.as_tensor(v) for k, v in value.items()}
        return torch.as_tensor(value)

    def __repr__(self) -> str:
        return f"TorchMetric({self.metric!r})"
