"""Input checks and the bincount confusion matrix shared by the segmentation metrics.

For k+1 classes, ``p_ij`` counts the pixels of true class ``i`` predicted as class ``j``
(rows: target, columns: prediction). Every score of Long et al. (FCN, CVPR 2015, section 5)
and Garcia-Garcia et al. ("A Review on Deep Learning Techniques Applied to Semantic
Segmentation", 2017, section 5.1.3) is a ratio of sums of this one matrix, so one ``bincount``
of ``target * C + pred`` over the valid pixels is all a streaming metric needs to keep.

Input modes:
    ``"multiclass"``: ``target`` (N, ...) integer labels; ``preds`` (N, ...) integer labels or
        (N, C, ...) scores (logits or probabilities; the arg-max over dim 1 is the label).
    ``"binary"``: as multiclass with C = 2, and ``preds`` may also be (N, ...) floats: the
        foreground probability, thresholded at ``threshold`` (values outside [0, 1] are taken
        as logits and passed through a sigmoid first).
    ``"multilabel"``: ``target`` (N, C, ...) of 0/1 per class; ``preds`` (N, C, ...) 0/1 or
        per-class probabilities/logits (sigmoid, then ``threshold``). Each class is its own
        2x2 matrix: ``(C, 2, 2)`` indexed ``[class, target, pred]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo_core import ZooError

MODES = ("multiclass", "binary", "multilabel")


def check_config(num_classes: int, ignore_index: int | None, mode: str, threshold: float) -> None:
    """Raise a clear error for an invalid metric configuration."""
    if mode not in MODES:
        raise ZooError(f"mode={mode!r} is not a segmentation mode; valid modes: {MODES}")
    least = 1 if mode == "multilabel" else 2
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) \
            or num_classes < least:
        raise ZooError(f"num_classes={num_classes!r} is invalid: a {mode} metric needs an "
                       f"integer >= {least} (background counts as a class)")
    if mode == "binary" and num_classes != 2:
        raise ZooError(f"num_classes={num_classes!r} with mode='binary': binary segmentation "
                       "has exactly 2 classes (background, foreground); use mode='multiclass'")
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, int)):
        raise ZooError(f"ignore_index={ignore_index!r} must be an int label or None")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ZooError(f"threshold={threshold!r} must lie in [0, 1] (it applies to probabilities)")


def _check_target(target: Tensor) -> None:
    if not isinstance(target, Tensor):
        raise ZooError(f"target must be a torch.Tensor of class indices, got {type(target)!r}")
    if target.is_floating_point() or target.is_complex():
        raise ZooError(f"target has dtype {target.dtype}: targets are class indices; pass an "
                       "integer tensor (target.long()), not scores or one-hot floats")


def _binarize(scores: Tensor, threshold: float) -> Tensor:
    """Probabilities (or logits, if any value leaves [0, 1]) -> 0/1 int64."""
    if scores.numel() and bool(((scores < 0) | (scores > 1)).any()):
        scores = scores.sigmoid()
    return (scores >= threshold).long()


def to_labels(preds: Tensor, target: Tensor, num_classes: int, mode: str,
              threshold: float = 0.5) -> tuple[Tensor, Tensor, bool]:
    """Bring ``preds`` to integer labels of ``target``'s shape.

    Returns:
        ``(labels, target, checked)``: ``checked`` is True when the labels are in range by
        construction (arg-max or threshold), so the range check can be skipped.
    """
    _check_target(target)
    if not isinstance(preds, Tensor):
        raise ZooError(f"preds must be a torch.Tensor, got {type(preds)!r}")
    C = num_classes
    if preds.is_floating_point():
        if mode == "multilabel":
            _same_shape(preds, target, "(N, C, ...) per-class scores")
            return _binarize(preds, threshold), target, True
        if preds.dim() == target.dim() + 1:
            if preds.shape[1] != C or preds.shape[:1] + preds.shape[2:] != target.shape:
                raise ZooError(
                    f"preds of shape {tuple(preds.shape)} do not fit target of shape "
                    f"{tuple(target.shape)} with num_classes={C}: scores must be (N, C, ...) "
                    f"= {(target.shape[0], C, *target.shape[1:]) if target.dim() else '?'}")
            return preds.max(1).indices, target, True  # max(1) runs ~2x faster than argmax(1)
        if mode == "binary" and preds.shape == target.shape:
            return _binarize(preds, threshold), target, True
        raise ZooError(
            f"float preds of shape {tuple(preds.shape)} for target of shape "
            f"{tuple(target.shape)}: give class indices as an integer tensor (preds.long()) or "
            f"scores of shape (N, C, ...) with C={C} (or mode='binary' for foreground "
            "probabilities)")
    if preds.dtype == torch.bool:
        preds = preds.long()
    if mode == "multilabel":
        _same_shape(preds, target, "(N, C, ...) 0/1 labels")
    else:
        _same_shape(preds, target, "class indices of target's shape, or (N, C, ...) scores")
    return preds, target, False


def _same_shape(preds: Tensor, target: Tensor, what: str) -> None:
    if preds.shape != target.shape:
        raise ZooError(f"shape mismatch: preds {tuple(preds.shape)} vs target "
                       f"{tuple(target.shape)}; preds must be {what}")


def _bad_values(values: Tensor, hi: int, ignore_index: int | None) -> list[int]:
    bad = (values < 0) | (values >= hi)
    if ignore_index is not None:
        bad &= values != ignore_index
    return sorted(int(v) for v in values[bad].unique()[:8])


def raise_out_of_range(labels: Tensor, target: Tensor, num_classes: int,
                       ignore_index: int | None, mode: str) -> None:
    """The slow path of the range check: find the bad labels and name them."""
    hi = 2 if mode == "multilabel" else num_classes
    bad = _bad_values(target, hi, ignore_index)
    if bad:
        raise ZooError(f"target holds labels {bad} outside [0, {hi}) that are not "
                       f"ignore_index={ignore_index!r}; fix num_classes or the labels, or "
                       "set ignore_index to the void label")
    bad = _bad_values(labels, hi, None)
    if bad:
        raise ZooError(f"preds hold labels {bad} outside [0, {hi}); predictions must be "
                       f"class indices in [0, {hi}) (num_classes={num_classes!r})")


def check_preds(labels: Tensor, target: Tensor, num_classes: int, mode: str) -> None:
    """Integer predictions in [0, C) (one min/max pass)."""
    hi = 2 if mode == "multilabel" else num_classes
    lo_p, hi_p = torch.aminmax(labels)
    if int(lo_p) < 0 or int(hi_p) >= hi:
        bad = _bad_values(labels, hi, None)
        raise ZooError(f"preds hold labels {bad} outside [0, {hi}); predictions must be "
                       f"class indices in [0, {hi}) (num_classes={num_classes!r})")


def confusion(labels: Tensor, target: Tensor, num_classes: int, ignore_index: int | None,
              mode: str, per_image: bool = False, validate: bool = True) -> Tensor:
    """Bincount confusion matrix on the inputs' device, int64.

    ``labels`` must already lie in [0, C) (see :func:`check_preds`). With ``validate``, target
    labels outside [0, C) that are not ``ignore_index`` raise: the ignored pixels go to one
    spare bin right after the C*C cells, so a bad label shows as an index out of
    [0, C*C] or as more pixels in the spare bin than were ignored; this costs one min/max and
    one count instead of masked passes over the target.

    Returns:
        multiclass/binary: (C, C), or (N, C, C) with ``per_image``;
        multilabel: (C, 2, 2), or (N, C, 2, 2) with ``per_image``.
    """
    C = num_classes
    n = target.shape[0] if target.dim() else 1
    t = target if target.dtype == torch.long else target.long()
    if mode == "multilabel":
        # each (class, pixel) pair is a 2x2 cell: bin = class * 4 + target * 2 + pred
        if validate:
            ok = (t == 0) | (t == 1)
            if ignore_index is not None:
                ok |= t == ignore_index
            if not bool(ok.all()):
                raise_out_of_range(labels, target, C, ignore_index, mode)
        t = t.reshape(n, C, -1)
        cls = torch.arange(C, device=t.device).view(1, C, 1) * 4
        idx = cls + t * 2 + labels.reshape(n, C, -1)  # (N, C, P)
        cells, shape = 4 * C, (C, 2, 2)
    else:
        t = t.reshape(n, -1)
        idx = t * C + labels.reshape(n, -1)  # (N, P)
        cells, shape = C * C, (C, C)
    ignored = 0
    if ignore_index is not None:
        mask = t == ignore_index
        idx.masked_fill_(mask, cells)  # the ignored go to the spare bin
        ignored = int(mask.sum())
    if validate and idx.numel():
        lo, hi = torch.aminmax(idx)
        if int(lo) < 0 or int(hi) > cells:
            raise_out_of_range(labels, target, C, ignore_index, mode)
    if per_image:
        idx = idx + torch.arange(n, device=idx.device).view(-1, *[1] * (idx.dim() - 1)) \
            * (cells + 1)
        counts = torch.bincount(idx.reshape(-1), minlength=n * (cells + 1))
        counts = counts.view(n, cells + 1)
        spare_count = counts[:, cells].sum()
        counts = counts[:, :cells].reshape(n, *shape)
    else:
        counts = torch.bincount(idx.reshape(-1), minlength=cells + 1)
        spare_count = counts[cells]
        counts = counts[:cells].reshape(shape)
    if validate and int(spare_count) != ignored:  # a target label aliased the spare bin
        raise_out_of_range(labels, target, C, ignore_index, mode)
    return counts


def stats(cm: Tensor, multilabel: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(tp, fp, fn, correct)`` per class, float64, from confusion matrices.

    Args:
        cm: (..., C, C) multiclass matrices, or (..., C, 2, 2) ``[class, target, pred]``
            multilabel ones.
        multilabel: which of the two ``cm`` is.

    Returns:
        ``tp``, ``fp``, ``fn`` of shape (..., C) and ``correct`` (...): the correctly labelled
        pixels (multiclass: the trace; multilabel: ``tp + tn`` summed over classes).
    """
    cm = cm.double()
    if multilabel:
        tp, fp, fn, tn = cm[..., 1, 1], cm[..., 0, 1], cm[..., 1, 0], cm[..., 0, 0]
        return tp, fp, fn, (tp + tn).sum(-1)
    tp = cm.diagonal(dim1=-2, dim2=-1)
    fp = cm.sum(-2) - tp
    fn = cm.sum(-1) - tp
    return tp, fp, fn, tp.sum(-1)
