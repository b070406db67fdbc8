"""Verification: ROC/AUC against torchmetrics, K-fold accuracy against a brute-force search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_auroc, binary_roc
from zoo_face.verification import embed, evaluate, kfold_accuracy, roc, tar_at_far

import zoo_core as zoo


def pairs(n: int = 1200, seed: int = 0, quantum: float | None = None):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    s = (0.45 * y + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)).clamp(-0.99, 0.99)
    if quantum:
        s = (torch.floor(s / quantum) + 0.5) * quantum        # bin centres
    return s, y


def test_roc_and_auc_match_torchmetrics():
    s, y = pairs(quantum=0.01)                                 # ties included
    far, tar, thr = roc(s, y)
    pf, pt, _ = binary_roc(s, y)
    for f in (0.5, 0.1, 0.01, 0.003):
        assert tar_at_far(far, tar, [f])[f] == pytest.approx(float(pt[pf <= f].max()))
    assert float(torch.trapezoid(tar, far)) == pytest.approx(float(binary_auroc(s, y)), abs=1e-6)
    assert (thr[1:] < thr[:-1]).all()


def brute_force_kfold(s: np.ndarray, y: np.ndarray, k: int) -> tuple[float, float]:
    fold = np.arange(len(s)) * k // len(s)
    cands = np.append(np.unique(s), np.inf)
    accs = []
    for i in range(k):
        tr, te = fold != i, fold == i
        best = max(cands, key=lambda t: (((s[tr] >= t) == y[tr]).mean(), -t))
        accs.append(((s[te] >= best) == y[te]).mean())
    return float(np.mean(accs)), float(np.std(accs))


def test_kfold_accuracy_matches_brute_force():
    s, y = pairs(600, seed=1)
    got = kfold_accuracy(s, y, folds=10)
    mean, std = brute_force_kfold(s.numpy(), y.numpy().astype(bool), 10)
    assert got["accuracy"] == pytest.approx(mean)
    assert got["accuracy_std"] == pytest.approx(std)
    assert len(got["thresholds"]) == 10


def test_streaming_metric_equals_exact_evaluation_on_bin_centres():
    s, y = pairs(3000, seed=2, quantum=0.1)
    folds = torch.arange(3000) * 10 // 3000
    metric = zoo.create("metric:verification", num_folds=10, num_bins=20)
    for part in range(3):
        sl = slice(part * 1000, (part + 1) * 1000)
        metric.update(s[sl], y[sl], folds=folds[sl])
    got, exact = metric.compute(), evaluate(s, y, folds=folds)
    for key in ("accuracy", "accuracy_std", "auc", "tar@far=0.1", "tar@far=0.01"):
        assert got[key] == pytest.approx(exact[key], abs=1e-12), key


def test_metric_sync_across_merge_and_perfect_separation():
    metric = zoo.create("metric:verification")
    metric.update(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([1, 1, 1]))
    other = zoo.create("metric:verification")
    other.update(torch.tensor([0.1, -0.2, 0.3]), torch.tensor([0, 0, 0]))
    out = metric.merge(other).compute()
    assert out["best_accuracy"] == 1.0 and out["auc"] == 1.0 and out["tar@far=0.0001"] == 1.0


def test_flip_test_fuses_both_views():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 5, 6))
    x = torch.randn(7, 3, 4, 5)
    got = embed(net, x, flip=True, batch_size=3)
    with torch.no_grad():
        ref = net(x) + net(torch.flip(x, dims=[3]))
    torch.testing.assert_close(got, ref / ref.norm(dim=1, keepdim=True))


@pytest.mark.parametrize("scores, labels, match", [
    ([0.1, 0.2], [1, 2], "pair label 2"), ([0.1, 0.2], [1], "one entry per pair"),
])
def test_bad_pairs(scores, labels, match):
    with pytest.raises(zoo.InputError, match=match):
        evaluate(torch.tensor(scores), torch.tensor(labels))
