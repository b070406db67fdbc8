"""Metrics called like torchmetrics, the CPU arg-max, the ignore rows, and the plot's manners.

Expected values come from torchmetrics (its ``metric(preds, target)`` returns the batch's
value and accumulates) and from ``torch.argmax``.
"""

from __future__ import annotations

import importlib.metadata
import os

import pytest
import torch
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex
from zoo_segmetrics._confmat import argmax_labels

import zoo_core as zoo


def batches(C: int, n: int = 3, ignore: int = 255, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        target = torch.randint(0, C, (2, 9, 7), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.15] = ignore
        yield torch.randn(2, C, 9, 7, generator=g), target


@pytest.mark.parametrize("labels", [False, True], ids=["logits", "labels"])
def test_call_returns_the_batch_value_like_torchmetrics(labels):
    ours = zoo.create("metric:segmentation", num_classes=5, ignore_index=255)
    peer = MulticlassJaccardIndex(5, average="macro", ignore_index=255)
    for logits, target in batches(5):
        preds = logits.argmax(1) if labels else logits
        got = ours(preds, target)
        assert got["mean_iou"] == pytest.approx(float(peer(preds, target)), abs=1e-6)
    assert ours.compute()["mean_iou"] == pytest.approx(float(peer.compute()), abs=1e-6)


def test_confusion_call_returns_the_batch_matrix():
    ours = zoo.create("metric:confusion", num_classes=4, ignore_index=255)
    peer = MulticlassConfusionMatrix(4, ignore_index=255)
    for logits, target in batches(4, seed=3):
        assert torch.equal(ours(logits, target)["confusion_matrix"], peer(logits, target))
    assert torch.equal(ours.compute()["confusion_matrix"], peer.compute())


@pytest.mark.parametrize("ignore", [0, 2, -100, None])
def test_ignore_index_inside_below_and_absent(ignore):
    C = 4
    ours = zoo.create("metric:segmentation", num_classes=C, ignore_index=ignore)
    peer = MulticlassConfusionMatrix(C, ignore_index=ignore)
    for logits, target in batches(C, ignore=-100 if ignore is None else ignore, seed=5):
        if ignore is None:
            target = target.clamp(min=0)
        ours.update(logits, target)
        peer.update(logits, target)
    assert torch.equal(ours.compute()["confusion_matrix"], peer.compute())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16,
                                   torch.bfloat16])
def test_argmax_matches_torch_with_ties_and_nan(dtype, monkeypatch):
    monkeypatch.setattr("zoo_segmetrics._confmat._BLOCK", 64)  # several blocks per image
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 6, 17, 11, generator=g) * 2).round() / 2  # many ties
    x[0, 3, 2, 2] = float("nan")
    x[1, :, 0, 0] = float("nan")
    x = x.to(dtype)
    got = argmax_labels(x)
    assert got.shape == (3, 17, 11)
    assert torch.equal(got.long(), x.argmax(1))


def test_plot_extra_is_declared():
    extras = importlib.metadata.metadata("zoo-segmetrics").get_all("Provides-Extra")
    assert "plot" in extras


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_plot_leaves_global_state_and_writes_with_the_umask(tmp_path, umask):
    import matplotlib

    backend = matplotlib.rcParams._get_backend_or_none()
    cm = zoo.create("metric:confusion", num_classes=3)
    for logits, target in batches(3):
        cm.update(logits, target)
    old = os.umask(umask)
    try:
        cm.plot(tmp_path / "cm.png")
    finally:
        os.umask(old)
    assert (tmp_path / "cm.png").stat().st_mode & 0o777 == 0o666 & ~umask
    assert matplotlib.rcParams._get_backend_or_none() == backend
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []
