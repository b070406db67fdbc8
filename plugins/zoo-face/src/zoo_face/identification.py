"""1:N identification: rank-1 accuracy and open-set TAR@FAR over a gallery and probes.

Grother et al., NIST IR 8238 (FRVT 1:N), §3: a probe is compared with every enrolled identity
(its distance to that identity); a *mated* probe (its identity is enrolled) is identified at
threshold t when its nearest identity is the right one and nearer than t (the detection and
identification rate, here TAR); a *non-mated* probe (not enrolled, target -1) is a false alarm
when any identity is nearer than t (the false positive identification rate, here FAR).
``TAR@FAR=f`` is the highest TAR at a threshold whose FAR does not exceed f; rank-1 accuracy
is the fraction of mated probes whose nearest identity is the right one, whatever the distance.

Streaming state (sums, so batches, merges and ranks add up): counts of mated and non-mated
probes, of rank-1 hits, and histograms over ``distance_range`` of the nearest distance of the
rank-1 hits and of the non-mated probes; thresholds are the bin edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

import zoo_core as zoo

FARS = (1e-1, 1e-2, 1e-3)


class Identification(zoo.Metric):
    """Streaming 1:N identification metric (``metric:identification``).

    Args:
        num_bins: histogram bins over ``distance_range`` (thresholds are bin edges).
        distance_range: (low, high) of the distances; values outside go to the end bins.
        fars: the FARs to report TAR at.

    ``update(preds, target)``: ``preds`` (P, G) distances of P probes to G enrolled identities
    (smaller is nearer, e.g. ``FaceGallery``'s), ``target`` (P,) the probe's identity in
    [0, G), or -1 for a probe whose identity is not enrolled.

    ``compute()``: ``rank1`` (over mated probes), ``tar@far=…`` (open set; NaN without
    non-mated probes) and the ``far``/``tar``/``thresholds`` curves.
    """

    def __init__(self, num_bins: int = 2000, distance_range: tuple[float, float] = (0.0, 2.0),
                 fars: Sequence[float] = FARS) -> None:
        super().__init__()
        lo, hi = distance_range
        if num_bins < 2 or not lo < hi:
            raise zoo.ConfigError(f"num_bins={num_bins!r} (>= 2) and distance_range="
                                  f"{distance_range!r} (low < high) are invalid")
        self.num_bins, self.low, self.high, self.fars = num_bins, float(lo), float(hi), tuple(fars)
        self.add_state("counts", torch.zeros(3, dtype=torch.long))  # mated, non-mated, rank-1
        self.add_state("hist", torch.zeros(2, num_bins, dtype=torch.long))  # hits, non-mated

    def update(self, preds: Tensor, target: Tensor) -> None:
        d, y = torch.as_tensor(preds).detach().double(), torch.as_tensor(target).flatten()
        if d.dim() != 2 or y.shape != d.shape[:1] or d.shape[1] == 0:
            raise zoo.InputError(f"preds {tuple(d.shape)!r} must be (P, G) distances, G >= 1, "
                                 f"and target {tuple(y.shape)!r} (P,) identities")
        if y.dtype.is_floating_point or bool(((y < -1) | (y >= d.shape[1])).any()):
            raise zoo.InputError(f"target must hold identities in [0, {d.shape[1]}) or -1 "
                                 f"(not enrolled), got {y.tolist()[:8]!r}")
        if not bool(torch.isfinite(d).all()):
            raise zoo.InputError("distances contain NaN or inf; check the descriptors")
        nearest, best = d.min(dim=1)                                   # (P,), (P,)
        mated = y >= 0
        hit = mated & (best == y)
        b = ((nearest - self.low) / (self.high - self.low) * self.num_bins).floor()
        b = b.clamp(0, self.num_bins - 1).long()
        self.counts += torch.stack([mated.sum(), (~mated).sum(), hit.sum()])
        self.hist[0].index_add_(0, b[hit], torch.ones_like(b[hit]))
        self.hist[1].index_add_(0, b[~mated], torch.ones_like(b[~mated]))

    def compute(self) -> dict[str, Any]:
        mated, non_mated, hits = (int(c) for c in self.counts)
        # accepted at threshold j: distance in a bin below j, i.e. < the j-th upper edge
        accepted = torch.cat([torch.zeros(2, 1, dtype=torch.long), self.hist.cumsum(1)], 1)
        tar = accepted[0].double() / max(mated, 1)
        far = accepted[1].double() / non_mated if non_mated else torch.full_like(tar, math.nan)
        thresholds = self.low + (self.high - self.low) * torch.arange(
            self.num_bins + 1, dtype=torch.float64) / self.num_bins
        out: dict[str, Any] = {"rank1": hits / mated if mated else math.nan}
        for f in self.fars:
            ok = far <= f
            out[f"tar@far={f:g}"] = float(tar[ok].max()) if non_mated and bool(ok.any()) \
                else math.nan
        out.update({"far": far, "tar": tar, "thresholds": thresholds})
        return out

    def example_batches(self) -> list[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(0)
        out = []
        for _ in range(3):
            y = torch.randint(-1, 5, (30,), generator=g)
            d = 0.4 + 0.6 * torch.rand(30, 5, generator=g)
            mated = y >= 0
            d[mated, y[mated]] -= 0.35 * torch.rand(int(mated.sum()), generator=g)
            out.append((d, y))
        return out

    def bad_inputs(self) -> list[tuple[Tensor, Tensor]]:
        d, y = self.example_batches()[0]
        return [(d, y[:-1]),                        # one identity short
                (d, y + 5),                         # identities past the gallery
                (d, y.double()),                    # identities as floats
                (d[0], y[:1])]                      # distances without the gallery axis
