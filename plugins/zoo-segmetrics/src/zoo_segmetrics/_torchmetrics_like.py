"""What torchmetrics users reach for on a metric: ``.device``, ``forward`` and the adapter
that lets a zoo metric join a ``torchmetrics.MetricCollection``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class TorchmetricsLike:
    """Mixed into the zoo metrics of this plugin (after ``zoo.Metric``)."""

    state: dict[str, Tensor]

    @property
    def device(self) -> torch.device:
        """The device of the metric's states (moved by ``.to(device)``, or by ``update`` to
        the device of the data)."""
        return next(iter(self.state.values())).device

    def forward(self, preds: Tensor, target: Tensor) -> Any:
        """torchmetrics' ``forward``: add the batch, return its value alone."""
        return self(preds, target)  # type: ignore[operator]

    def as_torchmetric(self, **kwargs: Any) -> Any:
        """This metric as a ``torchmetrics.Metric`` (needs torchmetrics), e.g. for a
        ``MetricCollection``; see :mod:`zoo_segmetrics.torchmetrics_adapter`."""
        try:
            from .torchmetrics_adapter import TorchMetric
        except ImportError as err:
            from zoo_core import ConfigError

            raise ConfigError(f"as_torchmetric() needs torchmetrics ({err}); install it: "
                              "pip install 'zoo-segmetrics[torchmetrics]'") from None
        return TorchMetric(self, **kwargs)  # type: ignore[arg-type]
