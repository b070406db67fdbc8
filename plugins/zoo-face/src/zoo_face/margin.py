"""Shared machinery of the margin-based softmax losses.

Writing the logit of class ``j`` as ``W_j · x = ‖W_j‖ ‖x‖ cos θ_j`` (Liu et al., 2016,
"Large-Margin Softmax Loss", eq. 2) and normalising ``W`` (and ``x``) turns the softmax
decision boundary into an angle; every loss of this package then differs only in how the
target logit ``f_{y}`` is formed. A loss of this family implements :meth:`MarginLoss.logits`,
which maps embeddings and a set of class parameters (the full centre matrix, or the shard and
sample that Partial FC hands it) to logits; :meth:`MarginLoss.forward` adds the cross-entropy.

Target convention inside :meth:`logits`: ``target[i]`` indexes the columns of the given class
parameters; a negative value means "no margin on this row" (an ignored sample, or a sample
whose class lives on another rank of Partial FC).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo

IGNORE_INDEX = -100
"""The label value the losses skip (as ``torch.nn.CrossEntropyLoss`` does)."""


def check_range(name: str, value: float, low: float, high: float, *, closed_high: bool = True,
                hint: str = "") -> float:
    """Raise unless ``low <= value <= high`` (or ``< high``); return ``float(value)``."""
    ok = low <= value <= high if closed_high else low <= value < high
    if not ok or not math.isfinite(value):
        bracket = "]" if closed_high else ")"
        raise zoo.ConfigError(f"{name}={value!r} is outside its valid range [{low:g}, {high:g}"
                             f"{bracket}{'; ' + hint if hint else ''}")
    return float(value)


def check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise zoo.ConfigError(f"{name}={value!r} must be a positive integer")
    return value


def cosine(x: Tensor, weight: Tensor) -> Tensor:
    """Cosine of the angle between each embedding and each centre.

    Args:
        x: embeddings (B, D).
        weight: centres (C, D).

    Returns:
        cos θ (B, C) in :func:`working_dtype`. ``weight`` is divided by its row norms after
        the product (a (B, C) scaling) instead of being normalised first (a (C, D) copy),
        which is cheaper for C ≫ B. Norms are taken in float32 for half inputs, so small
        centres do not overflow the backward pass.
    """
    dtype = working_dtype(x)
    x_hat = F.normalize(x.to(dtype), dim=1).to(x.dtype)                # (B, D)
    inv_norm = torch.rsqrt(weight.to(dtype).pow(2).sum(1).clamp_min(1e-24))  # (C,)
    return (x_hat @ weight.t()).to(dtype) * inv_norm                   # (B, C)


def working_dtype(t: Tensor) -> torch.dtype:
    """float32 for half types (margin trigonometry is done on B values only), else t.dtype."""
    return torch.promote_types(t.dtype, torch.float32)


def clamped_acos(c: Tensor) -> Tensor:
    """acos with its argument kept inside (−1, 1): finite values and gradients at cos θ = ±1."""
    eps = torch.finfo(c.dtype).eps
    return torch.acos(c.clamp(-1 + eps, 1 - eps))


def replace_target(logits: Tensor, target: Tensor, value: Tensor) -> Tensor:
    """``logits`` with ``logits[i, target[i]] = value[i]`` where ``target[i] >= 0``.

    ``logits`` must be a fresh tensor (it is written in place; autograd tracks the write).
    """
    rows = torch.nonzero(target >= 0).squeeze(1)                       # (B',)
    return logits.index_put_((rows, target[rows]), value[rows].to(logits.dtype))


def target_cosine(cos: Tensor, target: Tensor) -> Tensor:
    """cos θ_{y_i} (B,) in :func:`working_dtype` (rows with a negative target read column 0)."""
    return cos.gather(1, target.clamp(min=0)[:, None]).squeeze(1).to(working_dtype(cos))


class MarginLoss(zoo.Loss):
    """Base of the margin losses: owns the class centres, validates, adds cross-entropy.

    Args:
        embedding_size: D, the width of the embeddings.
        num_classes: C, the number of identities.
        ignore_index: label value whose rows are left out of the loss.

    Subclasses implement :meth:`logits` and may implement :meth:`regularizer`.
    """

    class_parameters: ClassVar[tuple[str, ...]] = ("weight",)

    def __init__(self, embedding_size: int = 512, num_classes: int = 1000, *,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.embedding_size = check_positive_int("embedding_size", embedding_size)
        self.num_classes = check_positive_int("num_classes", num_classes)
        if ignore_index >= 0:
            raise zoo.ConfigError(f"ignore_index={ignore_index!r} must be negative so that it "
                                 "cannot collide with a class label; the default is -100")
        self.ignore_index = ignore_index
        self.weight = nn.Parameter(torch.empty(self.centre_shape()))
        nn.init.normal_(self.weight, std=0.01)

    def centre_shape(self) -> tuple[int, ...]:
        """Shape of the class-centre matrix; dimension 0 is always the class."""
        return (self.num_classes, self.embedding_size)

    def class_params(self) -> dict[str, Tensor]:
        """The per-class parameters (leading dimension C) by name, as :meth:`logits` takes them."""
        return {n: getattr(self, n) for n in self.class_parameters
                if getattr(self, n, None) is not None}

    def logits(self, x: Tensor, target: Tensor, weight: Tensor, **params: Tensor) -> Tensor:
        """Logits (B, C') of embeddings ``x`` (B, D) against the given class parameters."""
        raise NotImplementedError

    def regularizer(self, x: Tensor) -> Tensor | None:
        """A per-sample term (B,) added to the loss (averaged like it), or ``None``."""
        return None

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        """Mean cross-entropy of the margin logits over the non-ignored samples, plus the
        regulariser if the loss has one."""
        self.check_inputs(input, target)
        target = torch.where(target == self.ignore_index, -1, target)
        loss = self.cross_entropy(input, target)
        reg = self.regularizer(input)
        if reg is not None:
            keep = target >= 0
            loss = loss + (reg * keep).sum() / keep.sum()
        return loss

    def cross_entropy(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        """Mean cross-entropy of the margin logits; ``target`` holds −1 for ignored rows."""
        logits = self.logits(input, target, **self.class_params())          # (B, C)
        return F.cross_entropy(logits.to(working_dtype(logits)), target, ignore_index=-1)

    def check_inputs(self, input: Tensor, target: Tensor) -> None:  # noqa: A002
        """Raise a :class:`zoo.InputError` naming the bad value on malformed input."""
        check_embeddings(input, self.embedding_size)
        check_labels(target, input.shape[0], self.num_classes, self.ignore_index)

    def example_inputs(self) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(6, self.embedding_size, generator=g).mul_(8).requires_grad_()
        target = torch.randint(0, self.num_classes, (6,), generator=g)
        return x, target

    def bad_inputs(self) -> list[tuple[Tensor, Tensor]]:
        x, target = self.example_inputs()
        return bad_pairs(x, target)

    @classmethod
    def example(cls) -> MarginLoss:
        return cls(embedding_size=8, num_classes=5)

    def extra_repr(self) -> str:
        return f"embedding_size={self.embedding_size}, num_classes={self.num_classes}"


def check_embeddings(x: Any, embedding_size: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise zoo.InputError(f"embeddings must be a floating tensor of shape (B, "
                             f"{embedding_size}), got {shape!r}")
    if x.shape[1] != embedding_size:
        raise zoo.InputError(
            f"embedding size mismatch: got embeddings of shape {tuple(x.shape)!r} but the loss "
            f"has embedding_size={embedding_size}; build the loss with "
            f"embedding_size={x.shape[1]} or fix the backbone's output width")


def bad_pairs(x: Tensor, target: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Malformed (embeddings, labels) pairs every loss over class centres refuses."""
    return [(x[:, :-1], target),                        # embedding size off by one
            (x, target[:-1]),                           # one label short of the batch
            (x, target.float()),                        # float labels
            (x[0], target[:1])]                         # one embedding without the batch dim


def debug() -> bool:
    """``zoo.checks.debug()`` (``ZOO_DEBUG=1``): check tensor values (label ranges) in forward
    passes, which waits for the device; off by default, so that forwards never synchronise
    (nor break a compiled graph). Out-of-range labels then fail inside ``cross_entropy``."""
    return zoo.checks.debug()


def check_labels(target: Any, batch: int, num_classes: int, ignore_index: int) -> None:
    if not isinstance(target, Tensor) or target.dtype not in (torch.int64, torch.int32):
        what = target.dtype if isinstance(target, Tensor) else type(target).__name__
        raise zoo.InputError(f"labels must be an int64 tensor of shape ({batch},), got {what!r}")
    if target.shape != (batch,):
        raise zoo.InputError(f"labels must have shape ({batch},) to match the embeddings, "
                             f"got {tuple(target.shape)!r}")
    if not debug():             # the value check asks the device: only with ZOO_DEBUG=1
        return
    bad = ((target < 0) & (target != ignore_index)) | (target >= num_classes)
    if bool(bad.any()):
        value = int(target[bad][0])
        raise zoo.InputError(
            f"label {value!r} is out of range: labels must lie in [0, {num_classes}) or equal "
            f"ignore_index={ignore_index}; check num_classes or the dataset's label mapping")
