"""torchmetrics' everyday MetricCollection usage, with zoo metrics joined to it by one line
(``seg.as_torchmetric()``): per-batch ``forward`` values, ``compute``, ``reset``, ``.device``
and ``.to``; every zoo result equal to the torchmetrics metric of the same score in the same
collection. Written from torchmetrics' MetricCollection documentation."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
    MulticlassPrecision,
    MulticlassRecall,
)
from zoo_segmetrics.torchmetrics_adapter import TorchMetric

import zoo_core as zoo

C, IGNORE = 4, 255
# zoo key in the collection -> the torchmetrics metric of the same score
PEERS = {
    "zoo_mean_iou": lambda: MulticlassJaccardIndex(C, average="macro", ignore_index=IGNORE),
    "zoo_iou": lambda: MulticlassJaccardIndex(C, average="none", ignore_index=IGNORE),
    "zoo_pixel_accuracy": lambda: MulticlassAccuracy(C, average="micro", ignore_index=IGNORE),
    "zoo_mean_accuracy": lambda: MulticlassAccuracy(C, average="macro", ignore_index=IGNORE),
    "zoo_precision": lambda: MulticlassPrecision(C, average="none", ignore_index=IGNORE),
    "zoo_recall": lambda: MulticlassRecall(C, average="none", ignore_index=IGNORE),
    "zoo_confusion_matrix": lambda: MulticlassConfusionMatrix(C, ignore_index=IGNORE),
    "cm_confusion_matrix": lambda: MulticlassConfusionMatrix(C, ignore_index=IGNORE),
}


def _batches(n: int = 3):
    """Every class present in every batch's target and predictions (no undefined scores)."""
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        target = torch.randint(0, C, (2, 9, 9), generator=g)
        target[0, 0, :C] = torch.arange(C)
        target[torch.rand(target.shape, generator=g) < 0.1] = IGNORE
        target[0, 0, :C] = torch.arange(C)
        logits = torch.randn(2, C, 9, 9, generator=g)
        logits[1, :, 0, :C] = 10 * torch.eye(C)
        yield logits, target


def _collection() -> MetricCollection:
    peers = {f"peer:{k}": make() for k, make in PEERS.items()}
    return MetricCollection({
        **peers,
        "zoo": zoo.create("metric:segmentation", num_classes=C,
                          ignore_index=IGNORE).as_torchmetric(),      # the one added line
        "cm": zoo.create("metric:confusion", num_classes=C).as_torchmetric(),
    })


def _assert_zoo_equals_peers(values: dict) -> None:
    for key in PEERS:
        ours, ref = values[key], values[f"peer:{key}"]
        torch.testing.assert_close(ours.to(ref.dtype), ref, rtol=1e-6, atol=1e-6, msg=key)


def test_collection_forward_compute_reset():
    metrics = _collection()
    assert isinstance(metrics["zoo"], Metric) and isinstance(metrics["cm"], Metric)
    for logits, target in _batches():
        _assert_zoo_equals_peers(metrics(logits, target))             # forward: the batch
    _assert_zoo_equals_peers(metrics.compute())                        # everything seen
    metrics.reset()
    logits, target = next(_batches(1))
    metrics.update(logits, target)
    _assert_zoo_equals_peers(metrics.compute())
    assert metrics["zoo"].device == metrics["peer:zoo_iou"].device == torch.device("cpu")


def test_collection_moves_zoo_states_with_to():
    metrics = _collection().to(torch.float64)
    assert metrics["zoo"].confmat.dtype == torch.long                 # counts stay int
    metrics = metrics.to("meta")
    assert metrics["zoo"].device.type == "meta"
    assert metrics["zoo"].confmat.device.type == "meta"


def test_zoo_metric_device_and_forward():
    seg = zoo.create("metric:segmentation", num_classes=C, ignore_index=IGNORE)
    peer = MulticlassJaccardIndex(C, ignore_index=IGNORE)
    assert seg.device == peer.device
    for logits, target in _batches():
        torch.testing.assert_close(seg.forward(logits, target)["mean_iou"],
                                   float(peer.forward(logits, target)), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(seg.compute()["mean_iou"], float(peer.compute()), rtol=1e-6,
                               atol=1e-6)
    assert seg.to("meta").device.type == "meta"


def test_adapter_starts_empty_and_leaves_the_metric_alone():
    seg = zoo.create("metric:segmentation", num_classes=C, ignore_index=IGNORE)
    logits, target = next(_batches(1))
    seg.update(logits, target)
    before = seg.confmat.clone()
    adapter = seg.as_torchmetric()
    assert int(adapter.confmat.sum()) == 0
    adapter.update(logits, target)
    assert torch.equal(seg.confmat, before) and torch.equal(adapter.confmat, before)


def test_adapter_refuses_what_is_not_a_zoo_metric():
    with pytest.raises(zoo.InputError, match="MulticlassAccuracy"):
        TorchMetric(MulticlassAccuracy(C))
