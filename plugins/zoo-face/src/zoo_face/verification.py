"""Face verification: pair protocol, K-fold accuracy, ROC and TAR@FAR, flip-test fusion.

The protocol of LFW (Huang et al., 2007, "Labeled Faces in the Wild", View 2): pairs come in K
folds (10 of 600 pairs); for each fold the threshold that maximises accuracy on the other K−1
folds is applied to the held-out fold, and the mean ± standard deviation of the K accuracies is
reported. A pair is declared "same" when its score (cosine similarity of the two embeddings)
is ``>= threshold``. The ROC gives the true-accept rate (TAR, the fraction of genuine pairs
accepted) against the false-accept rate (FAR, the fraction of impostor pairs accepted);
``TAR@FAR=f`` is the highest TAR at a threshold whose FAR does not exceed f (IJB-style
reporting). Flip-test: the embedding of an image is fused with that of its horizontal mirror
(summed, then normalised) before scoring.

Exact functions work on whole score arrays; :class:`Verification` (``metric:verification``)
streams: its state is per-fold histograms of genuine and impostor scores, which add up across
batches and ranks; thresholds are then restricted to bin edges (``num_bins`` over
``score_range``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import zoo_core as zoo

FARS = (1e-1, 1e-2, 1e-3, 1e-4)


def _check_pairs(scores: Any, labels: Any) -> tuple[Tensor, Tensor]:
    s = torch.as_tensor(scores).detach().double().flatten()
    y = torch.as_tensor(labels).detach().flatten()
    if s.shape != y.shape:
        raise zoo.InputError(f"scores {tuple(s.shape)!r} and labels {tuple(y.shape)!r} must have "
                             "one entry per pair")
    if y.numel() and not bool(((y == 0) | (y == 1)).all()):
        bad = y[(y != 0) & (y != 1)][0].item()
        raise zoo.InputError(f"pair label {bad!r} is not 0 (different) or 1 (same identity)")
    if not bool(torch.isfinite(s).all()):
        raise zoo.InputError("scores contain NaN or inf; check the embeddings")
    return s, y.bool()


def roc(scores: Any, labels: Any) -> tuple[Tensor, Tensor, Tensor]:
    """ROC of "same if score >= threshold".

    Returns:
        ``far`` (false-accept rate), ``tar`` (true-accept rate) and ``thresholds``, one entry
        per distinct score in decreasing order, preceded by the point (0, 0) at +inf.
    """
    s, y = _check_pairs(scores, labels)
    order = torch.argsort(s, descending=True)
    s, y = s[order], y[order]
    tp, fp = torch.cumsum(y, 0).double(), torch.cumsum(~y, 0).double()
    last = torch.ones_like(y)
    last[:-1] = s[1:] != s[:-1]                      # last position of each distinct score
    zero = torch.zeros(1, dtype=torch.float64)
    far = torch.cat([zero, fp[last] / max(int((~y).sum()), 1)])
    tar = torch.cat([zero, tp[last] / max(int(y.sum()), 1)])
    return far, tar, torch.cat([torch.tensor([math.inf]), s[last]])


def tar_at_far(far: Tensor, tar: Tensor, fars: Sequence[float] = FARS) -> dict[float, float]:
    """The highest TAR whose FAR is at most each target FAR."""
    return {f: float(tar[far <= f + 1e-12].max()) for f in fars}


def auc(far: Tensor, tar: Tensor) -> float:
    """Area under the ROC curve (trapezoids)."""
    return float(torch.trapezoid(tar, far))


def _best_threshold(correct: Tensor) -> int:
    """Index of the best of the candidate thresholds (ties: the lowest index)."""
    return int(torch.argmax(correct))


def kfold_accuracy(scores: Any, labels: Any, folds: Any = 10) -> dict[str, Any]:
    """LFW-style K-fold verification accuracy.

    Args:
        scores: pair scores (N,), higher = more similar.
        labels: 1 for a genuine pair, 0 for an impostor pair (N,).
        folds: number of contiguous folds K, or a fold id per pair (N,).

    Returns:
        ``{"accuracy": mean, "accuracy_std": std, "accuracies": (K,), "thresholds": (K,)}``;
        the std divides by K (as the LFW results tables do).
    """
    s, y = _check_pairs(scores, labels)
    if isinstance(folds, int):
        if folds < 2 or folds > s.numel():
            raise zoo.InputError(f"folds={folds!r} must lie in [2, number of pairs={s.numel()}]")
        fold = torch.arange(s.numel()) * folds // s.numel()
    else:
        fold = torch.as_tensor(folds).flatten().long()
        if fold.shape != s.shape:
            raise zoo.InputError(f"folds {tuple(fold.shape)!r} must give one id per pair")
    candidates = torch.cat([torch.unique(s), torch.tensor([math.inf])])  # (T,)
    accept = s[:, None] >= candidates[None, :]                           # (N, T)
    right = accept == y[:, None]                                         # (N, T)
    accs, thresholds = [], []
    for k in torch.unique(fold):
        train = fold != k
        j = _best_threshold(right[train].sum(0))
        thresholds.append(float(candidates[j]))
        accs.append(float(right[~train, j].double().mean()))
    a = torch.tensor(accs, dtype=torch.float64)
    return {"accuracy": float(a.mean()), "accuracy_std": float(a.std(unbiased=False)),
            "accuracies": a, "thresholds": torch.tensor(thresholds, dtype=torch.float64)}


def evaluate(scores: Any, labels: Any, folds: Any = 10,
             fars: Sequence[float] = FARS) -> dict[str, Any]:
    """K-fold accuracy, AUC and TAR@FAR of pair scores (exact, not binned)."""
    out = kfold_accuracy(scores, labels, folds)
    far, tar, _ = roc(scores, labels)
    out["auc"] = auc(far, tar)
    out.update({f"tar@far={f:g}": v for f, v in tar_at_far(far, tar, fars).items()})
    return out


def pair_scores(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity (N,) of paired embeddings (N, D)."""
    return F.cosine_similarity(a.float(), b.float(), dim=1)


@torch.no_grad()
def embed(model: Callable[[Tensor], Tensor], images: Tensor, *, flip: bool = True,
          batch_size: int = 256) -> Tensor:
    """Unit-norm embeddings (N, E) of images (N, C, H, W); ``flip`` adds the mirrored view."""
    outs = []
    for chunk in images.split(batch_size):
        e = model(chunk)
        if flip:
            e = e + model(chunk.flip(-1))
        outs.append(F.normalize(e.float(), dim=1))
    return torch.cat(outs)


class Verification(zoo.Metric):
    """Streaming verification metric over pair scores (``metric:verification``).

    Args:
        num_folds: K of the K-fold accuracy.
        num_bins: histogram bins over ``score_range`` (thresholds are bin edges).
        score_range: (low, high) of the scores; values outside fall into the end bins.
        fars: the FARs to report TAR at.

    ``update(preds, target, folds=None)``: ``preds`` pair scores (N,), ``target`` 1/0 genuine
    or impostor (N,), ``folds`` fold ids in [0, K) (N,) for a fixed protocol such as LFW's
    (``arange(6000) // 600``). Without ``folds`` each pair goes to a fold drawn from a hash of
    its score's bits, so the split does not depend on how the pairs are batched or merged.

    ``compute()``: accuracy (mean over folds) and accuracy_std, best_accuracy (one threshold
    for all pairs), auc, ``tar@far=…`` and the ``far``/``tar``/``thresholds`` curves.
    """

    def __init__(self, num_folds: int = 10, num_bins: int = 4000,
                 score_range: tuple[float, float] = (-1.0, 1.0),
                 fars: Sequence[float] = FARS) -> None:
        super().__init__()
        if num_folds < 2:
            raise zoo.ConfigError(f"num_folds={num_folds!r} must be at least 2")
        if num_bins < 2:
            raise zoo.ConfigError(f"num_bins={num_bins!r} must be at least 2")
        lo, hi = score_range
        if not lo < hi:
            raise zoo.ConfigError(f"score_range={score_range!r} must be (low, high), low < high")
        self.num_folds, self.num_bins = num_folds, num_bins
        self.low, self.high = float(lo), float(hi)
        self.fars = tuple(fars)
        self.add_state("hist", torch.zeros(num_folds, 2, num_bins, dtype=torch.long))

    def update(self, preds: Tensor, target: Tensor, folds: Tensor | None = None) -> None:
        s, y = _check_pairs(preds, target)
        b = ((s - self.low) / (self.high - self.low) * self.num_bins).floor()
        b = b.clamp(0, self.num_bins - 1).long()
        if folds is None:
            bits = s.view(torch.int64)
            k = torch.remainder((bits ^ (bits >> 29)) * 0x2545F4914F6CDD1D >> 17, self.num_folds)
        else:
            k = torch.as_tensor(folds).flatten().long()
            if k.shape != s.shape or bool(((k < 0) | (k >= self.num_folds)).any()):
                raise zoo.InputError(f"folds must be ids in [0, {self.num_folds}), one per pair")
        self.hist.index_put_((k, y.long(), b), torch.ones_like(b), accumulate=True)

    def edges(self) -> Tensor:
        """Lower edge of each bin: the candidate thresholds."""
        return self.low + (self.high - self.low) * torch.arange(self.num_bins,
                                                                dtype=torch.float64) / self.num_bins

    @staticmethod
    def _accepts(hist: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """TP, FP (accepted at threshold bin j, j = 0…B) and the totals P, N of (2, B) counts."""
        acc = hist.flip(-1).cumsum(-1).flip(-1)                          # (2, B): count >= j
        acc = torch.cat([acc, torch.zeros_like(acc[:, :1])], -1)          # (2, B+1)
        return acc[1], acc[0], hist[1].sum(), hist[0].sum()

    def compute(self) -> dict[str, Any]:
        tp, fp, p, n = self._accepts(self.hist.sum(0))
        correct = (tp + (n - fp)).double()                                  # (B+1,)
        total = max(int(p + n), 1)
        far, tar = (fp.double() / max(int(n), 1)).flip(0), (tp.double() / max(int(p), 1)).flip(0)
        accs = []
        for k in range(self.num_folds):
            held = self.hist[k]
            if int(held.sum()) == 0:
                continue
            ttp, tfp, tp_, tn_ = self._accepts(self.hist.sum(0) - held)
            j = _best_threshold(ttp + (tn_ - tfp))
            htp, hfp, hp, hn = self._accepts(held)
            accs.append(float(htp[j] + hn - hfp[j]) / float(hp + hn))
        a = torch.tensor(accs, dtype=torch.float64)
        thresholds = torch.cat([self.edges(), torch.tensor([math.inf])]).flip(0)
        out: dict[str, Any] = {
            "accuracy": float(a.mean()) if accs else math.nan,
            "accuracy_std": float(a.std(unbiased=False)) if accs else math.nan,
            "best_accuracy": float(correct.max()) / total,
            "auc": auc(far, tar),
        }
        out.update({f"tar@far={f:g}": v for f, v in tar_at_far(far, tar, self.fars).items()})
        out.update({"far": far, "tar": tar, "thresholds": thresholds})
        return out

    def example_batches(self) -> list[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(0)
        out = []
        for _ in range(3):
            y = torch.randint(0, 2, (40,), generator=g)
            s = (y * 0.5 + torch.randn(40, generator=g) * 0.3).clamp(-1, 1)
            out.append((s, y))
        return out

    def bad_inputs(self) -> list[tuple[Tensor, Tensor]]:
        s, y = self.example_batches()[0]
        return [(s, y[:-1]),                            # one label short
                (s, y + 2)]                             # labels that are not 0/1

    @classmethod
    def example(cls) -> Verification:
        return cls(num_folds=3, num_bins=50)
