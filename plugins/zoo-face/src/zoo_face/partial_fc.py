"""Partial FC: margin softmax over millions of identities, model-parallel and sampled.

An et al., 2021, "Partial FC: Training 10 Million Identities on a Single Machine", and
An et al., 2022, "Killing Two Birds with One Stone: Efficient and Robust Training of Face
Recognition CNNs by Partial FC" (CVPR). The C class centres are split over the ``W`` ranks of
``torch.distributed`` (rank r holds C/W rows); every rank all-gathers the embeddings and
labels of the global batch, keeps the centres of the positive classes of that batch and a
uniform sample of the negatives so that ``⌈r · C/W⌉`` centres take part, and the softmax is
computed across ranks: with logits ``z`` spread over the shards,

    p_ij = exp(z_ij − max_k z_ik) / Σ_k exp(z_ik − max_k z_ik)        (max, sum all-reduced)

and the loss is the mean of ``−log p_{i,y_i}`` over the global batch. At ``sample_rate = 1``
it equals the single-process loss on the whole batch and the whole centre matrix, and so do
its gradients.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

import zoo_core as zoo

from .margin import IGNORE_INDEX, bad_pairs, check_embeddings, check_labels, check_positive_int


def _world(group: Any) -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(group), dist.get_rank(group)
    return 1, 0


class _AllGather(torch.autograd.Function):
    """Concatenate every rank's (B, D) block; backward sums the gradients and keeps ours."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any, world: int, rank: int) -> Tensor:
        ctx.group, ctx.rank, ctx.batch = group, rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts)                                            # (W·B, D)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        grad = grad.contiguous()
        dist.all_reduce(grad, group=ctx.group)
        lo = ctx.rank * ctx.batch
        return grad[lo:lo + ctx.batch], None, None, None


class _AllReduceSum(torch.autograd.Function):
    """Sum a per-rank partial loss; each rank's gradient flows to its own part only."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any) -> Tensor:
        out = x.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


class _ShardedCrossEntropy(torch.autograd.Function):
    """Mean −log softmax at the target, with the classes split over ranks.

    ``target`` indexes this rank's columns, −1 where the label lives elsewhere; ``keep``
    marks the rows that count (not ignored); ``count`` is their number in the global batch.
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, keep: Tensor, count: int,
                group: Any, world: int) -> Tensor:
        z = logits.detach().to(torch.promote_types(logits.dtype, torch.float32))  # (N, S)
        top = z.amax(1)                                                    # (N,)
        if world > 1:
            dist.all_reduce(top, op=dist.ReduceOp.MAX, group=group)
        p = torch.exp(z - top[:, None])                                    # (N, S)
        total = p.sum(1)                                                   # (N,)
        if world > 1:
            dist.all_reduce(total, group=group)
        p /= total[:, None]
        rows = torch.nonzero(target >= 0).squeeze(1)
        nll = torch.zeros_like(total)
        nll[rows] = -torch.log(p[rows, target[rows]].clamp_min(1e-30))
        if world > 1:
            dist.all_reduce(nll, group=group)
        p[rows, target[rows]] -= 1                                         # softmax − one-hot
        p[~keep] = 0
        ctx.save_for_backward(p)
        ctx.count, ctx.dtype = count, logits.dtype
        return (nll * keep).sum() / count

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        (p,) = ctx.saved_tensors
        return (p * (grad / ctx.count)).to(ctx.dtype), None, None, None, None, None


class PartialFC(zoo.Loss):
    """Model-parallel, sampled margin softmax wrapping any margin loss.

    Args:
        loss: the wrapped margin loss, a registered name (``"arcface"``, ``"cosface"``,
            ``"loss:adaface"``, …) built with ``num_classes`` = this rank's share.
        embedding_size: D.
        num_classes: C, over all ranks.
        sample_rate: r in (0, 1]: fraction of this rank's centres used per step (positives
            of the global batch are always kept). Sampling happens in training mode only.
        sparse_grad: give the centres a sparse gradient holding only the sampled rows (for
            ``torch.optim.SGD`` without weight decay or ``torch.optim.SparseAdam``); (C, D)
            centres only, sub-centre ones (C, k, D) keep a dense gradient.
        group: the ``torch.distributed`` process group (default: the world).
        ignore_index: label value left out of the loss.
        **loss_options: options of the wrapped loss (``s``, ``m``, …).

    Example:
        >>> # torchrun --nproc-per-node 8 train.py
        >>> pfc = zoo.create("loss:partial-fc", loss="arcface", embedding_size=512,
        ...                  num_classes=2_000_000, sample_rate=0.1)
        >>> loss = pfc(backbone(images), labels)          # this rank's batch
    """

    def __init__(self, loss: str = "arcface", embedding_size: int = 512,
                 num_classes: int = 1000, sample_rate: float = 0.1, *, sparse_grad: bool = False,
                 group: Any = None, ignore_index: int = IGNORE_INDEX,
                 **loss_options: Any) -> None:
        super().__init__()
        self.embedding_size = check_positive_int("embedding_size", embedding_size)
        self.num_classes = check_positive_int("num_classes", num_classes)
        if not 0 < sample_rate <= 1:
            raise zoo.ConfigError(f"sample_rate={sample_rate!r} must lie in (0, 1] (typical: "
                                 "0.1; 1 keeps every class)")
        self.sample_rate = float(sample_rate)
        self.sparse_grad = sparse_grad
        self.group = group
        self.ignore_index = ignore_index
        self.world_size, self.rank = _world(group)
        if num_classes < self.world_size:
            raise zoo.ConfigError(f"num_classes={num_classes!r} is smaller than the world size "
                                 f"{self.world_size}: every rank needs at least one class")
        base, extra = divmod(num_classes, self.world_size)
        self.class_start = self.rank * base + min(self.rank, extra)
        self.num_local = base + (self.rank < extra)
        ref = loss if loss.startswith("loss:") else f"loss:{loss}"
        self.margin_loss = zoo.create(ref, embedding_size=embedding_size,
                                      num_classes=self.num_local, **loss_options)
        if not hasattr(self.margin_loss, "class_params"):
            raise zoo.ConfigError(f"loss={loss!r} is not a margin loss with class centres; use "
                                 "arcface, cosface, combined-margin, adaface, magface, …")

    @property
    def class_end(self) -> int:
        return self.class_start + self.num_local

    def sample(self, local_target: Tensor) -> tuple[Tensor | None, Tensor]:
        """Centres to use (sorted local indices, or None for all) and the remapped targets."""
        num_sample = math.ceil(self.sample_rate * self.num_local)
        if not self.training or num_sample >= self.num_local:
            return None, local_target
        positive = torch.unique(local_target[local_target >= 0])
        if positive.numel() >= num_sample:
            index = positive
        else:
            score = torch.rand(self.num_local, device=local_target.device)
            score[positive] = 2.0
            index = torch.topk(score, num_sample).indices.sort().values
        remap = torch.full((self.num_local,), -1, dtype=torch.long, device=index.device)
        remap[index] = torch.arange(index.numel(), device=index.device)
        return index, torch.where(local_target >= 0, remap[local_target.clamp(min=0)], -1)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        """Mean margin loss over the global batch; ``input`` (B, D), ``target`` (B,) local."""
        check_embeddings(input, self.embedding_size)
        check_labels(target, input.shape[0], self.num_classes, self.ignore_index)
        world = self.world_size
        if world > 1:
            sizes = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
            dist.all_gather(sizes, torch.tensor([input.shape[0]]), group=self.group)
            if len({int(s) for s in sizes}) > 1:
                raise zoo.InputError(f"per-rank batch sizes {[int(s) for s in sizes]!r} differ;"
                                     " Partial FC needs the same batch size on every rank "
                                     "(use drop_last=True in the DataLoader)")
            x_all = _AllGather.apply(input, self.group, world, self.rank)   # (N, D)
            labels = [torch.empty_like(target) for _ in range(world)]
            dist.all_gather(labels, target.contiguous(), group=self.group)
            t_all = torch.cat(labels)                                       # (N,)
        else:
            x_all, t_all = input, target
        keep = t_all != self.ignore_index
        mine = keep & (t_all >= self.class_start) & (t_all < self.class_end)
        local = torch.where(mine, t_all - self.class_start, -1)
        index, local = self.sample(local)
        params = self.margin_loss.class_params()
        if index is not None:
            params = {n: self._rows(p, index) for n, p in params.items()}
        logits = self.margin_loss.logits(x_all, local, **params)            # (N, S)
        count = int(keep.sum())
        loss = _ShardedCrossEntropy.apply(logits, local, keep, max(count, 1), self.group, world)
        reg = self.margin_loss.regularizer(input)
        if reg is not None:
            part = (reg * (target != self.ignore_index)).sum() / max(count, 1)
            loss = loss + (_AllReduceSum.apply(part, self.group) if world > 1 else part)
        return loss

    def _rows(self, p: Tensor, index: Tensor) -> Tensor:
        if not self.sparse_grad or p.dim() != 2:
            return p[index]
        return torch.nn.functional.embedding(index, p, sparse=True)        # (S, D)

    def example_inputs(self) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(6, self.embedding_size, generator=g).requires_grad_()
        return x, torch.randint(0, self.num_classes, (6,), generator=g)

    def bad_inputs(self) -> list[tuple[Tensor, Tensor]]:
        return bad_pairs(*self.example_inputs())

    @classmethod
    def example(cls) -> PartialFC:
        return cls("arcface", embedding_size=8, num_classes=10, sample_rate=0.5)

    def extra_repr(self) -> str:
        return (f"classes [{self.class_start}, {self.class_end}) of {self.num_classes}, "
                f"rank {self.rank}/{self.world_size}, sample_rate={self.sample_rate}")
