"""metric:identification against a direct computation of rank-1 and open-set TAR@FAR."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo_core as zoo


def direct(d: np.ndarray, y: np.ndarray, far: float) -> tuple[float, float]:
    """Rank-1 and TAR@FAR by trying every threshold between the observed distances."""
    mated = y >= 0
    rank1 = float((d[mated].argmin(1) == y[mated]).mean())
    nearest = d.min(1)
    best = 0.0
    for t in np.concatenate([[0.0], np.unique(nearest) + 1e-9]):
        fa = float((nearest[~mated] < t).mean())
        hit = float(((d[mated].argmin(1) == y[mated]) & (nearest[mated] < t)).mean())
        if fa <= far:
            best = max(best, hit)
    return rank1, best


def test_matches_a_direct_computation_across_batches():
    rng = np.random.default_rng(0)
    # distances on bin centres, so that the binned thresholds can reach every value
    d = (rng.integers(0, 1000, size=(300, 12)) + 0.5) / 1000 * 2.0
    y = rng.integers(-1, 12, size=300)
    mated = y >= 0
    d[mated, y[mated]] *= rng.uniform(0.3, 1.0, size=int(mated.sum()))
    d = (np.floor(d / 2.0 * 2000) + 0.5) / 2000 * 2.0
    metric = zoo.create("metric:identification", num_bins=2000, fars=(0.1, 0.01))
    other = zoo.create("metric:identification", num_bins=2000, fars=(0.1, 0.01))
    metric.update(torch.tensor(d[:120]), torch.tensor(y[:120]))
    other.update(torch.tensor(d[120:]), torch.tensor(y[120:]))
    metric.merge(other)
    out = metric.compute()
    for far in (0.1, 0.01):
        rank1, tar = direct(d, y, far)
        assert out["rank1"] == pytest.approx(rank1, abs=1e-12)
        assert out[f"tar@far={far:g}"] == pytest.approx(tar, abs=1e-12)


def test_bad_input_names_the_value():
    metric = zoo.create("metric:identification")
    with pytest.raises(zoo.InputError, match="identities in"):
        metric.update(torch.rand(3, 4), torch.tensor([0, 4, 1]))
    with pytest.raises(zoo.InputError, match=r"\(P, G\)"):
        metric.update(torch.rand(3), torch.tensor([0, 1, 1]))
    assert np.isnan(zoo.create("metric:identification").compute()["rank1"])
