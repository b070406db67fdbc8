"""Metrics are callable like torchmetrics': ``metric(preds, target)`` updates the running
state and returns the value of that batch alone."""

from __future__ import annotations

import pytest
import torch
import torchmetrics.classification as tm  # a dev dependency: missing fails, never skips

import zoo_core as zoo


def _batches(n: int, classes: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randint(0, classes, (2, 5, 6), generator=g),
             torch.randint(0, classes, (2, 5, 6), generator=g)) for _ in range(n)]


def test_confusion_call_matches_torchmetrics_forward() -> None:
    ours = zoo.create("metric:confusion", num_classes=4, ignore_index=None)
    peer = tm.MulticlassConfusionMatrix(num_classes=4)
    for preds, target in _batches(3):
        batch_value = ours(preds, target)
        assert torch.equal(batch_value["confusion_matrix"], peer(preds, target))
    assert torch.equal(ours.compute()["confusion_matrix"], peer.compute())


def test_segmentation_call_matches_torchmetrics_forward() -> None:
    ours = zoo.create("metric:segmentation", num_classes=4, ignore_index=None)
    peer = tm.MulticlassJaccardIndex(num_classes=4, average="macro")
    for preds, target in _batches(3):
        got = ours(preds, target)["mean_iou"]
        assert got == pytest.approx(float(peer(preds, target)), abs=1e-6)
    assert ours.compute()["mean_iou"] == pytest.approx(float(peer.compute()), abs=1e-6)


def test_call_keeps_the_running_state_when_update_fails() -> None:
    ours = zoo.create("metric:confusion", num_classes=3, ignore_index=None)
    preds, target = _batches(1, classes=3)[0]
    ours.update(preds, target)
    before = ours.compute()["confusion_matrix"].clone()
    with pytest.raises(zoo.ZooError):
        ours(torch.full_like(preds, 7), target)  # class 7 of 3
    assert torch.equal(ours.compute()["confusion_matrix"], before)
