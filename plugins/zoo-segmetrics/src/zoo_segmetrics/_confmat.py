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

import ctypes
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

import zoo_core as zoo
from zoo_core import ConfigError, InputError

MODES = ("multiclass", "binary", "multilabel")


def check_config(num_classes: int, ignore_index: int | None, mode: str, threshold: float) -> None:
    """Raise a clear error for an invalid metric configuration."""
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not a segmentation mode; valid modes: {MODES}")
    least = 1 if mode == "multilabel" else 2
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) \
            or num_classes < least:
        raise ConfigError(f"num_classes={num_classes!r} is invalid: a {mode} metric needs an "
                       f"integer >= {least} (background counts as a class)")
    if mode == "binary" and num_classes != 2:
        raise ConfigError(f"num_classes={num_classes!r} with mode='binary': binary segmentation "
                       "has exactly 2 classes (background, foreground); use mode='multiclass'")
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, int)):
        raise ConfigError(f"ignore_index={ignore_index!r} must be an int label or None")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"threshold={threshold!r} must lie in [0, 1] (it applies to "
                          "probabilities)")


def _check_target(target: Tensor) -> None:
    zoo.checks.tensor(target, "target", dtype=("integer", "bool"), fix="targets are class "
                      "indices; pass an integer tensor (target.long()), not scores or one-hot "
                      "floats")


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
    zoo.checks.tensor(preds, "preds")
    C = num_classes
    if preds.is_floating_point():
        if mode == "multilabel":
            _same_shape(preds, target, "(N, C, ...) per-class scores")
            return _binarize(preds, threshold), target, True
        if preds.dim() == target.dim() + 1:
            if preds.shape[1] != C or preds.shape[:1] + preds.shape[2:] != target.shape:
                raise InputError(
                    f"preds of shape {tuple(preds.shape)} do not fit target of shape "
                    f"{tuple(target.shape)} with num_classes={C}: scores must be (N, C, ...) "
                    f"= {(target.shape[0], C, *target.shape[1:]) if target.dim() else '?'}")
            return argmax_labels(preds), target, True
        if mode == "binary" and preds.shape == target.shape:
            return _binarize(preds, threshold), target, True
        raise InputError(
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


_BLOCK = 1 << 16  # pixels per block of the CPU arg-max: C x _BLOCK scores stay in cache


def argmax_labels(scores: Tensor) -> Tensor:
    """``scores.argmax(1)`` of (N, C, ...) scores as labels (N, ...); the first maximum wins.

    On CPU, ATen's arg-max over the strided class axis reads each score one at a time; here
    each block of pixels takes four vectorised ops: the column maximum ``m`` (a vertical
    reduction), ``E = (x == m)`` as 0/1 floats, and one small matmul ``[0..C-1; 1..1] @ E``
    that gives the index of the maximum and the number of maxima. Pixels with a tie (or a
    NaN score, which matches nothing) go to ``argmax`` itself, so the result is exact.
    Labels are uint8 when C <= 256.
    """
    if scores.device.type != "cpu" or scores.numel() == 0:
        return scores.argmax(1)
    n, c = scores.shape[:2]
    x = scores.reshape(n, c, -1)
    pixels = x.shape[2]
    labels = torch.empty(n, pixels, dtype=torch.uint8 if c <= 256 else torch.long)
    dt = torch.float32 if scores.dtype != torch.float64 else torch.float64
    weights = torch.stack([torch.arange(c, dtype=dt), torch.ones(c, dtype=dt)])  # (2, C)
    block = min(_BLOCK, pixels)
    best = torch.empty(1, block, dtype=scores.dtype)
    eq = torch.empty(c, block, dtype=dt)
    index_count = torch.empty(2, block, dtype=dt)
    ties = []
    for i in range(n):
        for start in range(0, pixels, block):
            xb = x[i, :, start:start + block]  # (C, b)
            b = xb.shape[1]
            torch.amax(xb, 0, keepdim=True, out=best[:, :b])
            torch.eq(xb, best[:, :b], out=eq[:, :b])
            torch.mm(weights, eq[:, :b], out=index_count[:, :b])
            labels[i, start:start + b] = index_count[0, :b]
            ties.append(index_count[1, :b] != 1)
    tied = torch.cat(ties).view(n, pixels)
    if tied.any():
        img, pix = tied.nonzero(as_tuple=True)
        labels[img, pix] = x[img, :, pix].argmax(1).to(labels.dtype)
    return labels.view(scores.shape[:1] + scores.shape[2:])


def _same_shape(preds: Tensor, target: Tensor, what: str) -> None:
    if preds.shape != target.shape:
        raise InputError(f"shape mismatch: preds {tuple(preds.shape)} vs target "
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
        raise InputError(f"target holds labels {bad} outside [0, {hi}) that are not "
                       f"ignore_index={ignore_index!r}; fix num_classes or the labels, or "
                       "set ignore_index to the void label")
    bad = _bad_values(labels, hi, None)
    if bad:
        raise InputError(f"preds hold labels {bad} outside [0, {hi}); predictions must be "
                       f"class indices in [0, {hi}) (num_classes={num_classes!r})")


def check_preds(labels: Tensor, target: Tensor, num_classes: int, mode: str) -> None:
    """Integer predictions in [0, C) (one min/max pass)."""
    hi = 2 if mode == "multilabel" else num_classes
    lo_p, hi_p = torch.aminmax(labels)
    if int(lo_p) < 0 or int(hi_p) >= hi:
        bad = _bad_values(labels, hi, None)
        raise InputError(f"preds hold labels {bad} outside [0, {hi}); predictions must be "
                         f"class indices in [0, {hi}) (num_classes={num_classes!r})")


def confusion(labels: Tensor, target: Tensor, num_classes: int, ignore_index: int | None,
              mode: str, per_image: bool = False, validate: bool = True,
              labels_checked: bool = True) -> Tensor:
    """Bincount confusion matrix on the inputs' device, int64.

    ``labels`` lie in [0, C), or ``labels_checked=False`` has them checked here (an
    :class:`InputError` naming the bad ones). On the CPU a multiclass matrix over the whole
    batch is one pass of a C loop over both label arrays (:func:`count_pairs`), where it
    builds. Otherwise, multiclass: one
    ``bincount`` of ``target * C + label`` over every pixel, ignored ones included: the target
    values from ``min(0, ignore_index)`` to ``max(C - 1, ignore_index)`` each get a row of C
    bins, the ignored row is dropped afterwards, and with ``validate`` a count in any other
    row outside [0, C) is a bad target label; a target below the first row or past the last
    one shows in ``bincount``'s own min/max (an error, or more bins than asked for). That is
    one pass over the inputs (the index) besides the count; no mask is built.

    Returns:
        multiclass/binary: (C, C), or (N, C, C) with ``per_image``;
        multilabel: (C, 2, 2), or (N, C, 2, 2) with ``per_image``.
    """
    if not per_image and mode != "multilabel":
        counted = count_pairs(labels, target, num_classes, ignore_index)
        if counted is not None:
            cm, bad_target, bad_pred = counted
            if bad_pred and not labels_checked:
                check_preds(labels, target, num_classes, mode)
            if bad_target and validate:
                raise_out_of_range(labels, target, num_classes, ignore_index, mode)
            return cm
    if not labels_checked:
        check_preds(labels, target, num_classes, mode)
    if mode == "multilabel":
        return _multilabel(labels, target, num_classes, ignore_index, per_image, validate)
    C = num_classes
    n = target.shape[0] if target.dim() else 1
    low = min(0, ignore_index) if ignore_index is not None else 0  # target value of row 0
    rows = (max(C - 1, ignore_index) if ignore_index is not None else C - 1) - low + 1
    bins = n * rows * C if per_image else rows * C
    # int64 targets give an int64 index (the add's fast path, no cast); narrower ones int32
    wide = target.dtype == torch.int64 or bins >= 2**31
    idx = torch.empty(n, target[0].numel() if target.dim() else 1, device=target.device,
                      dtype=torch.int64 if wide else torch.int32)
    torch.add(labels.reshape(n, -1), target.reshape(n, -1), alpha=C, out=idx)  # t * C + p
    if low:
        idx -= low * C
    if per_image:  # a target past the last row would count in the next image: check first
        if validate and idx.numel():
            lo, hi = torch.stack(torch.aminmax(idx)).tolist()
            if lo < 0 or hi >= rows * C:
                raise_out_of_range(labels, target, C, ignore_index, mode)
        idx += torch.arange(n, device=idx.device, dtype=idx.dtype).view(n, 1) * (rows * C)
    try:  # bincount reads the index's min and max itself: no pass of ours checks its range
        counts = bincount(idx.view(-1), bins)
    except RuntimeError:  # a negative index: a target below the lowest row
        raise_out_of_range(labels, target, C, ignore_index, mode)
        raise
    if validate and counts.numel() > bins:  # a target past the last row
        raise_out_of_range(labels, target, C, ignore_index, mode)
    counts = counts[:bins].view(n if per_image else 1, rows, C)
    if validate:
        other = torch.ones(rows, dtype=torch.bool)
        other[-low:C - low] = False
        if ignore_index is not None:
            other[ignore_index - low] = False
        if bool(counts[:, other.to(counts.device)].any()):
            raise_out_of_range(labels, target, C, ignore_index, mode)
    cm = counts[:, -low:C - low]
    if ignore_index is not None and 0 <= ignore_index < C:
        cm[:, ignore_index] = 0  # the ignored pixels, whatever their prediction
    return cm if per_image else cm[0]


_SPLIT = 1 << 20  # indices per thread below which one bincount call is as fast
_pool: ThreadPoolExecutor | None = None


def _threads(k: int) -> ThreadPoolExecutor:
    """A small pool whose threads run ATen or C calls that release the GIL."""
    global _pool
    if _pool is None or _pool._max_workers < k:
        _pool = ThreadPoolExecutor(k, thread_name_prefix="zoo-segmetrics")
    return _pool


_SOURCE = Path(__file__).with_name("confusion_count.c")
_SWITCH = "ZOO_SEGMETRICS_NATIVE"
_SUFFIX = {torch.uint8: "u8", torch.int32: "i32", torch.int64: "i64"}
_ARGS = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
         ctypes.c_int64, ctypes.c_void_p]


def count_pairs(labels: Tensor, target: Tensor, num_classes: int, ignore_index: int | None
                ) -> tuple[Tensor, int, int] | None:
    """The (C, C) matrix of CPU labels of uint8/int32/int64, with the number of bad targets
    (outside [0, C), not ignored) and bad predictions: one pass of ``confusion_count.c`` per
    thread over its share of the pixels. ``None`` where that does not apply or the C file
    does not build (or ``ZOO_SEGMETRICS_NATIVE=0``)."""
    if labels.device.type != "cpu" or target.device.type != "cpu" \
            or labels.dtype not in _SUFFIX or target.dtype not in _SUFFIX:
        return None
    lib = zoo.native.library(_SOURCE, name="zoo-segmetrics", flags=["-O3"], switch=_SWITCH)
    if lib is None:
        return None
    fn = getattr(lib, f"confusion_{_SUFFIX[target.dtype]}_{_SUFFIX[labels.dtype]}")
    if fn.argtypes is None:
        fn.argtypes, fn.restype = _ARGS, None
    t, p = target.reshape(-1).contiguous(), labels.reshape(-1).contiguous()
    n, c = t.numel(), num_classes
    parts = max(1, min(torch.get_num_threads(), n // _SPLIT))
    tables = torch.zeros(parts, c + 2, c + 1, dtype=torch.int64)   # see the C file
    bounds = [n * k // parts for k in range(parts + 1)]
    ignore = 0 if ignore_index is None else ignore_index

    def run(k: int) -> None:
        lo = bounds[k]
        fn(bounds[k + 1] - lo, t.data_ptr() + lo * t.element_size(),
           p.data_ptr() + lo * p.element_size(), c, ignore_index is not None, ignore,
           tables[k].data_ptr())

    if parts == 1:
        run(0)
    else:
        list(_threads(parts).map(run, range(parts)))
    table = tables.sum(0) if parts > 1 else tables[0]
    return table[:c, :c], int(table[c].sum()), int(table[:, c].sum())


def bincount(idx: Tensor, bins: int) -> Tensor:
    """``torch.bincount(idx, minlength=bins)``, in parts on torch's CPU threads.

    ATen's CPU bincount is one serial loop; the parts run on a small thread pool (each call
    releases the GIL) and their counts are added. A part longer than ``bins`` (an index past
    it) makes the result as long as the longest part, as one call would be.
    """
    threads = min(torch.get_num_threads(), idx.numel() // _SPLIT)
    if idx.device.type != "cpu" or threads < 2:
        return torch.bincount(idx, minlength=bins)
    parts = list(_threads(threads).map(lambda part: torch.bincount(part, minlength=bins),
                           idx.tensor_split(threads)))
    total = torch.zeros(max(map(len, parts)), dtype=parts[0].dtype)
    for part in parts:
        total[:len(part)] += part
    return total


def _multilabel(labels: Tensor, target: Tensor, C: int, ignore_index: int | None,
                per_image: bool, validate: bool) -> Tensor:
    """(C, 2, 2) matrices: each (class, pixel) pair is a cell ``class * 4 + target * 2 + pred``;
    ignored pixels go to one spare bin after the 4C cells."""
    n = target.shape[0] if target.dim() else 1
    t = target if target.dtype == torch.long else target.long()
    if validate:
        ok = (t == 0) | (t == 1)
        if ignore_index is not None:
            ok |= t == ignore_index
        if not bool(ok.all()):
            raise_out_of_range(labels, target, C, ignore_index, "multilabel")
    t = t.reshape(n, C, -1)
    cls = torch.arange(C, device=t.device).view(1, C, 1) * 4
    idx = cls + t * 2 + labels.reshape(n, C, -1)  # (N, C, P)
    cells = 4 * C
    if ignore_index is not None:
        idx.masked_fill_(t == ignore_index, cells)  # the ignored go to the spare bin
    if per_image:
        idx = idx + torch.arange(n, device=idx.device).view(-1, 1, 1) * (cells + 1)
    counts = torch.bincount(idx.reshape(-1), minlength=n * (cells + 1))
    counts = counts.view(n, cells + 1)[:, :cells].reshape(n, C, 2, 2)
    return counts if per_image else counts.sum(0)


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
