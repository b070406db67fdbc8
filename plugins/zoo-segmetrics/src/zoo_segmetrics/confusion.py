"""``metric:confusion``: the streaming pixel confusion matrix, its plot and per-class table.

``p_ij`` counts the pixels of true class ``i`` predicted as ``j`` (rows: target, columns:
prediction), accumulated with one ``bincount`` per update; see ``metric:segmentation`` for the
scores derived from it (Long et al., CVPR 2015, section 5).

Example:
    >>> cm = zoo.create("metric:confusion", num_classes=3)
    >>> cm.update(preds, target)
    >>> cm.plot("confusion.png", class_names=["road", "car", "sky"])
    >>> cm.table()["rows"][0]        # ['road', 0.93, 0.88, ...]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import zoo_core as zoo
from zoo_core import ConfigError, InputError, ZooError

from ._confmat import check_config, confusion, to_labels
from ._torchmetrics_like import TorchmetricsLike
from .segmentation import scores

NORMALIZE = (None, "true", "pred", "all")


def normalize_matrix(cm: Tensor, normalize: str | None) -> Tensor:
    """``cm`` as float64, divided by row sums (``"true"``), column sums (``"pred"``) or the
    total (``"all"``); rows/columns with no pixel stay 0."""
    if normalize not in NORMALIZE:
        raise ConfigError(f"normalize={normalize!r} is unknown; valid: {NORMALIZE}")
    m = cm.double()
    if normalize is None:
        return m
    den = {"true": m.sum(-1, keepdim=True), "pred": m.sum(-2, keepdim=True),
           "all": m.sum((-2, -1), keepdim=True)}[normalize]
    return m / den.clamp(min=1)


class ConfusionMatrix(zoo.Metric, TorchmetricsLike):
    """Streaming (C, C) int64 confusion matrix of segmentation (or any dense) labels.

    Args:
        num_classes: number of classes C, >= 2.
        ignore_index: target label whose pixels are skipped; ``None`` keeps all.
        normalize: what ``compute()["normalized"]`` divides by: ``"true"`` (rows, default;
            the diagonal is per-class recall), ``"pred"`` (columns), ``"all"`` or ``None``.
        mode: ``"multiclass"`` or ``"binary"`` (C = 2, foreground probabilities allowed).
        threshold: probability threshold of the binary mode.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255,
                 normalize: str | None = "true", mode: str = "multiclass",
                 threshold: float = 0.5) -> None:
        super().__init__()
        if mode == "multilabel":
            raise ConfigError("metric:confusion takes mode 'multiclass' or 'binary'; for "
                              "per-class 2x2 matrices use metric:segmentation(mode='multilabel')")
        check_config(num_classes, ignore_index, mode, threshold)
        if normalize not in NORMALIZE:
            raise ConfigError(f"normalize={normalize!r} is unknown; valid: {NORMALIZE}")
        self.num_classes, self.ignore_index, self.normalize = num_classes, ignore_index, normalize
        self.mode, self.threshold = mode, threshold
        self.add_state("confmat", torch.zeros(num_classes, num_classes, dtype=torch.long))

    @classmethod
    def example(cls) -> ConfusionMatrix:
        return cls(num_classes=3, ignore_index=255)

    def example_batches(self) -> list[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(1)
        out = []
        for _ in range(3):
            target = torch.randint(0, self.num_classes, (2, 6, 5), generator=g)
            target[0, 0] = 255
            out.append((torch.randint(0, self.num_classes, (2, 6, 5), generator=g), target))
        return out

    def bad_inputs(self) -> list[tuple[Tensor, Tensor]]:
        preds, target = self.example_batches()[0]
        C = self.num_classes
        return [(preds, target.float()),                         # float targets
                (preds[:, :-1], target),                         # shape mismatch
                (preds + C, target),                             # predicted class >= num_classes
                (torch.randn(2, C + 1, 6, 5), target)]           # scores for C + 1 classes

    @torch.no_grad()
    def update(self, preds: Tensor, target: Tensor) -> None:
        labels, target, in_range = to_labels(preds, target, self.num_classes, self.mode,
                                             self.threshold)
        if target.numel() == 0:
            return
        if self.confmat.device != target.device:
            self.to(target.device)
        self.confmat += confusion(labels, target, self.num_classes, self.ignore_index, self.mode,
                                  labels_checked=in_range)

    def compute(self) -> dict[str, Tensor]:
        """``confusion_matrix`` (int64 counts) and ``normalized`` (float64, per ``normalize``)."""
        return {"confusion_matrix": self.confmat.clone(),
                "normalized": normalize_matrix(self.confmat, self.normalize)}

    def _names(self, class_names: Sequence[str] | None) -> list[str]:
        if class_names is None:
            return [str(i) for i in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise InputError(f"class_names has {len(class_names)} names for num_classes="
                             f"{self.num_classes}; give one name per class")
        return [str(n) for n in class_names]

    def table(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """Per-class report: pixels, IoU, accuracy (recall), precision, Dice.

        Returns ``{"columns", "rows", "title"}``, the table shape ``zoo run`` renders.
        """
        names = self._names(class_names)
        got = scores(self.confmat, False, None)
        support = self.confmat.sum(1)
        rows = [[names[c], int(support[c])]
                + [round(float(got[k][c]), 4) for k in ("iou", "accuracy", "precision", "dice")]
                for c in range(self.num_classes)]
        title = (f"pixel accuracy {got['pixel_accuracy']:.4f}, mean IoU {got['mean_iou']:.4f}, "
                 f"{int(self.confmat.sum())} pixels")
        return {"columns": ["class", "pixels", "iou", "accuracy", "precision", "dice"],
                "rows": rows, "title": title}

    def plot(self, path: str | os.PathLike[str] | None = None,
             class_names: Sequence[str] | None = None, normalize: str | None = "true",
             title: str | None = None) -> Any:
        """Render the matrix as a heat map; write a PNG when ``path`` is given.

        Returns a matplotlib ``Figure`` of its own (``matplotlib.figure.Figure``: no pyplot,
        no backend switch, nothing global touched). The file is written atomically, with the
        mode the umask gives. Needs ``pip install 'zoo-segmetrics[plot]'``.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as e:
            raise ZooError("plotting needs matplotlib: pip install 'zoo-segmetrics[plot]'") from e
        names = self._names(class_names)
        m = normalize_matrix(self.confmat, normalize).cpu().numpy()
        size = max(4.0, 0.45 * self.num_classes + 2)
        fig = Figure(figsize=(size, size * 0.9), layout="constrained")
        ax = fig.add_subplot()
        im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ticks = range(self.num_classes)
        ax.set_xticks(ticks, names, rotation=90 if self.num_classes > 6 else 0)
        ax.set_yticks(ticks, names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title or f"confusion matrix (normalized: {normalize})")
        if self.num_classes <= 12:
            for i in ticks:
                for j in ticks:
                    text = f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=8,
                            color="white" if m[i, j] > 0.5 * m.max() else "black")
        if path is not None:
            with zoo.atomic_path(Path(path)) as tmp:
                fig.savefig(tmp, format="png", dpi=120)
        return fig
