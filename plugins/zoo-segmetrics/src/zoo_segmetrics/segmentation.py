"""``metric:segmentation``: PA, MPA, MIoU, FWIoU, Dice, precision and recall in one pass.

With ``p_ij`` the number of pixels of class ``i`` predicted as ``j`` over ``k + 1`` classes and
``t_i = sum_j p_ij`` the pixels of class ``i`` (Long et al., "Fully Convolutional Networks for
Semantic Segmentation", CVPR 2015, section 5; Garcia-Garcia et al. 2017, section 5.1.3)::

    PA    = sum_i p_ii / sum_i t_i                                  pixel accuracy
    MPA   = 1/(k+1) sum_i p_ii / t_i                                mean (class) accuracy
    MIoU  = 1/(k+1) sum_i p_ii / (t_i + sum_j p_ji - p_ii)          mean intersection over union
    FWIoU = 1/sum_i t_i  sum_i t_i p_ii / (t_i + sum_j p_ji - p_ii) frequency-weighted IoU
    Dice  = 1/(k+1) sum_i 2 p_ii / (t_i + sum_j p_ji)               mean F1 (Sorensen-Dice)

precision_i = p_ii / sum_j p_ji and recall_i = accuracy_i = p_ii / t_i. PA is dominated by the
most frequent class (a model that predicts "background" everywhere scores high when
background covers most pixels); MPA, MIoU and Dice weigh every class equally.

Policy for undefined scores: a per-class score whose denominator is 0 (IoU and Dice of a class
absent from both prediction and target; accuracy/recall of a class absent from the target;
precision of a class never predicted) is NaN and left out of the means, as mmsegmentation and
the Cityscapes scripts do. ``absent_score=0.0`` or ``1.0`` counts such scores as that value
instead (and the means then include them). Note: torchmetrics' macro ``MulticlassAccuracy``
counts a class that is predicted but absent from the target as accuracy 0; here it is undefined.

Aggregation: ``"dataset"`` (default, as mmseg and Cityscapes report) sums one confusion matrix
over every pixel seen; ``"image"`` scores each image on its own and averages the images
(per-class scores over the images where they are defined).

Example:
    >>> metric = zoo.create("metric:segmentation", num_classes=21, ignore_index=255)
    >>> metric.update(logits, target)            # (N, 21, H, W) scores, (N, H, W) labels
    >>> metric.compute()["mean_iou"]
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

import zoo_core as zoo
from zoo_core import ConfigError

from ._confmat import check_config, confusion, stats, to_labels
from ._torchmetrics_like import TorchmetricsLike

CLASS_KEYS = ("iou", "accuracy", "dice", "precision", "recall")
MEAN_KEYS = ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "mean_dice",
             "mean_precision", "mean_recall")
AGGREGATIONS = ("dataset", "image")


def _div(num: Tensor, den: Tensor, absent_score: float | None) -> Tensor:
    """num / den with 0/0 -> NaN (or ``absent_score``)."""
    fill = float("nan") if absent_score is None else float(absent_score)
    return torch.where(den > 0, num / den.clamp(min=1), torch.full_like(num, fill))


def _nanmean(x: Tensor) -> Tensor:
    """Mean over the last dim ignoring NaN; NaN where every entry is NaN (no warning)."""
    ok = ~x.isnan()
    return torch.where(ok, x, 0).sum(-1) / ok.sum(-1)  # 0/0 -> nan


def scores(cm: Tensor, multilabel: bool, absent_score: float | None) -> dict[str, Tensor]:
    """Every score from confusion matrices ``cm`` (..., C, C) or (..., C, 2, 2), float64."""
    tp, fp, fn, correct = stats(cm, multilabel)
    total = cm.double().flatten(-3 if multilabel else -2).sum(-1)
    support = tp + fn
    out = {
        "iou": _div(tp, tp + fp + fn, absent_score),
        "accuracy": _div(tp, support, absent_score),
        "dice": _div(2 * tp, 2 * tp + fp + fn, absent_score),
        "precision": _div(tp, tp + fp, absent_score),
    }
    out["recall"] = out["accuracy"].clone()
    support_all = support.sum(-1)
    fw = torch.where(support > 0, support * out["iou"].nan_to_num(0.0), 0).sum(-1)
    out.update({
        "pixel_accuracy": _div(correct, total, None),
        "mean_accuracy": _nanmean(out["accuracy"]),
        "mean_iou": _nanmean(out["iou"]),
        "fw_iou": _div(fw, support_all, None),
        "mean_dice": _nanmean(out["dice"]),
        "mean_precision": _nanmean(out["precision"]),
        "mean_recall": _nanmean(out["recall"]),
    })
    return out


class SegmentationMetric(zoo.Metric, TorchmetricsLike):
    """Streaming semantic-segmentation metrics from one int64 confusion matrix.

    Args:
        num_classes: number of classes C (background included), >= 2.
        ignore_index: target label whose pixels are skipped (the VOC/Cityscapes void label
            255 by default); ``None`` keeps every pixel.
        mode: ``"multiclass"`` (default), ``"binary"`` or ``"multilabel"`` (see
            ``zoo_segmetrics._confmat``).
        aggregation: ``"dataset"`` (one matrix over all pixels) or ``"image"`` (scores per
            image, then averaged over images).
        absent_score: ``None`` (undefined per-class scores are NaN and excluded from the
            means), or ``0.0`` / ``1.0`` to count them as that value.
        threshold: probability threshold of the binary and multilabel modes.
        validate: check label ranges on each update (one min/max pass; keep it on unless the
            labels are known good).

    ``compute()`` returns floats ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``,
    ``fw_iou``, ``mean_dice``, ``mean_precision``, ``mean_recall``; float64 tensors (C,) ``iou``,
    ``accuracy``, ``dice``, ``precision``, ``recall``; and the int64 ``confusion_matrix``
    ((C, C) rows = target, columns = prediction; (C, 2, 2) in multilabel mode).
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255,
                 mode: str = "multiclass", aggregation: str = "dataset",
                 absent_score: float | None = None, threshold: float = 0.5,
                 validate: bool = True) -> None:
        super().__init__()
        check_config(num_classes, ignore_index, mode, threshold)
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation={aggregation!r} is unknown; valid: {AGGREGATIONS} "
                              "('dataset' sums all pixels, 'image' averages per-image scores)")
        if absent_score is not None and float(absent_score) not in (0.0, 1.0):
            raise ConfigError(f"absent_score={absent_score!r} must be None (exclude undefined "
                              "per-class scores from the means), 0.0 or 1.0")
        self.num_classes, self.ignore_index, self.mode = num_classes, ignore_index, mode
        self.aggregation, self.absent_score, self.threshold = aggregation, absent_score, threshold
        self.validate = validate
        self.multilabel = mode == "multilabel"
        shape = (num_classes, 2, 2) if self.multilabel else (num_classes, num_classes)
        self.add_state("confmat", torch.zeros(shape, dtype=torch.long))
        if aggregation == "image":
            k, c = len(CLASS_KEYS), num_classes
            self.add_state("image_class_sum", torch.zeros(k, c, dtype=torch.float64))
            self.add_state("image_class_count", torch.zeros(k, c, dtype=torch.long))
            self.add_state("image_mean_sum", torch.zeros(len(MEAN_KEYS), dtype=torch.float64))
            self.add_state("image_mean_count", torch.zeros(len(MEAN_KEYS), dtype=torch.long))

    @classmethod
    def example(cls) -> SegmentationMetric:
        """A small instance for the contract checks."""
        return cls(num_classes=4, ignore_index=255)

    def example_batches(self) -> list[tuple[Tensor, Tensor]]:
        g = torch.Generator().manual_seed(0)
        batches = []
        for _ in range(3):
            target = torch.randint(0, self.num_classes, (2, 8, 8), generator=g)
            target[torch.rand(target.shape, generator=g) < 0.1] = 255
            logits = torch.randn(2, self.num_classes, 8, 8, generator=g)
            batches.append((logits, target))
        return batches

    def bad_inputs(self) -> list[tuple[Tensor, Tensor]]:
        logits, target = self.example_batches()[0]
        return [(logits[:, :-1], target),                        # scores for C - 1 classes
                (logits, target.float()),                        # float targets
                (logits.argmax(1)[:, :-1], target),              # shape mismatch
                (logits.argmax(1) + self.num_classes, target)]   # class index >= num_classes

    def _config(self) -> tuple[Any, ...]:
        return (self.num_classes, self.ignore_index, self.mode, self.aggregation,
                self.absent_score, self.threshold)

    def merge(self, other: zoo.Metric) -> SegmentationMetric:
        if isinstance(other, SegmentationMetric) and other._config() != self._config():
            raise ConfigError(f"cannot merge metrics configured differently: {self._config()} "
                              f"vs {other._config()} (num_classes, ignore_index, mode, "
                              "aggregation, absent_score, threshold)")
        super().merge(other)
        return self

    @torch.no_grad()
    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch: ``preds`` labels (N, ...) or scores (N, C, ...); ``target`` (N, ...)."""
        labels, target, in_range = to_labels(preds, target, self.num_classes, self.mode,
                                             self.threshold)
        if target.numel() == 0:
            return
        if self.confmat.device != target.device:
            self.to(target.device)
        per_image = self.aggregation == "image"
        cm = confusion(labels, target, self.num_classes, self.ignore_index, self.mode, per_image,
                       self.validate, labels_checked=in_range or not self.validate)
        if not per_image:
            self.confmat += cm
            return
        self.confmat += cm.sum(0)
        got = scores(cm, self.multilabel, self.absent_score)
        per_class = torch.stack([got[k] for k in CLASS_KEYS], 1)  # (N, 5, C)
        means = torch.stack([got[k] for k in MEAN_KEYS], 1)  # (N, 7)
        self.image_class_sum += per_class.nan_to_num(0.0).sum(0)
        self.image_class_count += (~per_class.isnan()).sum(0)
        self.image_mean_sum += means.nan_to_num(0.0).sum(0)
        self.image_mean_count += (~means.isnan()).sum(0)

    def compute(self) -> dict[str, Any]:
        """The scores so far (NaN with a warning when no valid pixel was seen)."""
        if int(self.confmat.sum()) == 0:
            warnings.warn("metric:segmentation.compute() before any valid pixel (no update "
                          "yet, or every pixel was ignore_index): the scores are NaN",
                          RuntimeWarning, stacklevel=2)
        if self.aggregation == "image":
            per_class = self.image_class_sum / self.image_class_count  # 0/0 -> nan
            means = self.image_mean_sum / self.image_mean_count
            out: dict[str, Any] = {k: per_class[i] for i, k in enumerate(CLASS_KEYS)}
            out.update({k: float(means[i]) for i, k in enumerate(MEAN_KEYS)})
        else:
            got = scores(self.confmat, self.multilabel, self.absent_score)
            out = {k: got[k] for k in CLASS_KEYS}
            out.update({k: float(got[k]) for k in MEAN_KEYS})
        out["confusion_matrix"] = self.confmat.clone()
        return out

    def __repr__(self) -> str:
        return (f"SegmentationMetric(num_classes={self.num_classes}, ignore_index="
                f"{self.ignore_index!r}, mode={self.mode!r}, aggregation={self.aggregation!r})")
