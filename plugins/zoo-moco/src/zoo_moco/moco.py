"""Momentum Contrast, He et al. 2020 (MoCo, arXiv:1911.05722), with the v2 settings (Chen et
al. 2020, arXiv:2003.04297) and, as an option, v3's symmetric loss without a queue (Chen, Xie
& He 2021, arXiv:2104.02057).

Algorithm 1 of the paper, one step on a batch of ``N`` images seen in two augmentations:

    q = normalize(f_q(x_q))                         # queries (N, C)
    θ_k ← m·θ_k + (1 − m)·θ_q                        # momentum update, before the keys (Eq. 2)
    k = normalize(f_k(x_k)), no gradient             # keys (N, C), BN shuffled across ranks
    logits = [q·k, q·queue] / T                       # (N, 1 + K): the positive, K negatives
    labels = 0                                       # the positive is class 0 (Eq. 1, InfoNCE)
    enqueue k, dequeue the oldest N                  # the queue (C, K) is a circular buffer

v2: the encoder ends in a 2-layer MLP head (hidden ReLU), ``T = 0.2`` and the "aug+" views
(:mod:`.augment`). v3 (``symmetric=True``): no queue; both views are queries and keys,
``q₁·k₂ᵀ / T`` and ``q₂·k₁ᵀ / T`` over the keys of the whole global batch stacked on a last
axis (logits (N, N·W, 2), labels (N, 2)), the positive of row ``i`` being key ``i`` of this
rank's slice; ``cross_entropy(logits, labels)`` is then the mean of the two directions (v3
scales their sum by ``2T``).

Shuffling BN (Section 3.3): under ``torch.distributed`` the key batch is gathered from all
ranks, permuted by a permutation drawn on rank 0 and broadcast, split back so that each rank
encodes other ranks' samples (its BN statistics then leak nothing about its queries), and the
keys are gathered and un-permuted. In a single process the keys are encoded as they come.

The key encoder and the queue advance only in training mode; in eval mode ``forward``
computes the same logits from the current state and changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo
from zoo_core import ConfigError, InputError, Model


@dataclass(frozen=True)
class MoCoConfig:
    """Configuration of :class:`MoCo` (defaults: MoCo v2 around ``model:convnet`` ``digits``).

    Attributes:
        backbone: the component ref of the backbone (``""`` when a module is given).
        backbone_preset: its preset.
        feature_dim: the backbone's output width; ``None`` reads its ``num_features``.
        dim: the embedding width ``C``; ``queue_size``: ``K`` negatives.
        momentum: ``m``; ``temperature``: ``T`` (v1 0.07, v2 0.2).
        mlp: a 2-layer MLP head (v2) instead of one linear layer (v1); ``mlp_hidden`` its
            width (``None``: ``feature_dim``).
        symmetric: v3's symmetric loss over the batch, no queue.
        shuffle_bn: shuffle the key batch across ranks under ``torch.distributed``.
    """

    backbone: str = "model:convnet"
    backbone_preset: str | None = "digits"
    feature_dim: int | None = None
    dim: int = 128
    queue_size: int = 65536
    momentum: float = 0.999
    temperature: float = 0.2
    mlp: bool = True
    mlp_hidden: int | None = None
    symmetric: bool = False
    shuffle_bn: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"momentum {self.momentum!r} must be in [0, 1]; MoCo uses 0.999")
        if self.temperature <= 0.0:
            raise ConfigError(f"temperature {self.temperature!r} must be > 0; MoCo v2 uses 0.2")
        if self.dim < 1 or (self.queue_size < 1 and not self.symmetric):
            raise ConfigError(f"dim {self.dim!r} and queue_size {self.queue_size!r} must be "
                              ">= 1 (symmetric=True needs no queue)")


PRESETS = {
    "tiny": MoCoConfig(backbone_preset="tiny", dim=8, queue_size=16, mlp_hidden=16),
    "v1": MoCoConfig(mlp=False, temperature=0.07),
    "v2": MoCoConfig(),
    "v3": MoCoConfig(symmetric=True, queue_size=0, momentum=0.99),
}


def _features(out: Any) -> Tensor:
    """A (B, F) tensor from a backbone's output: pooled if a feature map, the first tensor of
    a tuple or mapping."""
    if isinstance(out, Mapping):
        out = next(iter(out.values()))
    elif isinstance(out, Sequence) and not isinstance(out, Tensor):
        out = out[0]
    return out.mean(dim=(2, 3)) if out.dim() == 4 else out.flatten(1)


class Encoder(nn.Module):
    """``f(x) = head(backbone(x))``: the backbone's features through the projection head."""

    def __init__(self, backbone: nn.Module, feature_dim: int, c: MoCoConfig) -> None:
        super().__init__()
        self.backbone = backbone
        hidden = c.mlp_hidden or feature_dim
        self.head = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, c.dim)) if c.mlp \
            else nn.Linear(feature_dim, c.dim)

    def forward(self, x: Tensor) -> Tensor:  # (B, ...) -> (B, dim)
        return self.head(_features(self.backbone(x)))


class MoCo(Model):
    """``forward(im_q, im_k) -> (logits, labels)``; train with ``F.cross_entropy(logits,
    labels)``. ``encoder_q.backbone`` is the network to keep.

    Example:
        >>> moco = zoo.create("model:moco", preset="v2", queue_size=4096)
        >>> logits, labels = moco(augment(x, g), augment(x, g))    # (N, 1 + K), (N,)
        >>> F.cross_entropy(logits, labels).backward()
    """

    config_class = MoCoConfig
    presets: ClassVar[dict[str, MoCoConfig]] = PRESETS
    contract_opt_outs: ClassVar[dict[str, str]] = {
        "parameter_count": "two copies of the wrapped backbone plus the projection head; the "
                           "presets wrap this plugin's own convnet, whose count no paper gives"}

    def __init__(self, config: MoCoConfig, backbone: nn.Module | None = None) -> None:
        super().__init__(config)
        if backbone is None:
            if not config.backbone:
                raise ConfigError("MoCo needs a backbone: a component ref in the config "
                                  "(backbone='model:convnet') or a module, MoCo.wrap(module)")
            backbone = zoo.create(config.backbone, preset=config.backbone_preset)
        feature_dim = config.feature_dim or getattr(backbone, "num_features", None)
        if not isinstance(feature_dim, int):
            raise ConfigError(f"cannot tell the width of {type(backbone).__name__}'s features "
                              "(it has no num_features); set feature_dim")
        self.encoder_q = Encoder(backbone, feature_dim, config)
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        self.m, self.T = config.momentum, config.temperature
        size = 0 if config.symmetric else config.queue_size
        self.register_buffer("queue", F.normalize(torch.randn(config.dim, size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @classmethod
    def wrap(cls, backbone: nn.Module, preset: str | None = None, **overrides: Any) -> MoCo:
        """MoCo around a module (its ``num_features``, or ``feature_dim=``, gives the width)."""
        config = zoo.build_config(cls, preset, overrides)
        return cls(replace(config, backbone="", backbone_preset=None), backbone)

    @property
    def K(self) -> int:  # noqa: N802 - the paper's name
        return int(self.queue.shape[1])

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``θ_k ← m·θ_k + (1 − m)·θ_q`` (Eq. 2)."""
        params_k = list(self.encoder_k.parameters())
        torch._foreach_mul_(params_k, self.m)
        torch._foreach_add_(params_k, list(self.encoder_q.parameters()), alpha=1.0 - self.m)

    def forward(self, im_q: Tensor, im_k: Tensor) -> tuple[Tensor, Tensor]:
        self._check(im_q, im_k)
        if self.config.symmetric:
            return self._symmetric(im_q, im_k)
        q = F.normalize(self.encoder_q(im_q), dim=1)  # (N, C)
        with torch.no_grad():
            if self.training:
                self.momentum_update()
            k = self.keys(im_k)  # (N, C)
        l_pos = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
        l_neg = q @ self.queue.clone()  # (N, K); the queue changes below
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        if self.training:
            self.enqueue(k)
        return logits, labels

    def _symmetric(self, im_1: Tensor, im_2: Tensor) -> tuple[Tensor, Tensor]:
        q1 = F.normalize(self.encoder_q(im_1), dim=1)
        q2 = F.normalize(self.encoder_q(im_2), dim=1)
        with torch.no_grad():
            if self.training:
                self.momentum_update()
            k1, k2 = _gather(self.keys(im_1)), _gather(self.keys(im_2))  # (N·W, C)
        logits = torch.stack([q1 @ k2.T, q2 @ k1.T], dim=2) / self.T  # (N, N·W, 2)
        n = q1.shape[0]
        labels = torch.arange(n, device=q1.device) + n * _rank()
        return logits, labels[:, None].expand(n, 2)  # (N, 2)

    @torch.no_grad()
    def keys(self, im_k: Tensor) -> Tensor:
        """Normalised keys (N, C) of ``im_k`` by the key encoder, BN shuffled across ranks."""
        if self.config.shuffle_bn and _world() > 1:
            shuffled, undo = shuffle_batch(im_k)
            return unshuffle_batch(F.normalize(self.encoder_k(shuffled), dim=1), undo)
        return F.normalize(self.encoder_k(im_k), dim=1)

    @torch.no_grad()
    def enqueue(self, k: Tensor) -> None:
        """Write the keys of every rank (N·W, C) over the oldest columns of the queue."""
        keys = _gather(k)
        slots = (self.queue_ptr + torch.arange(keys.shape[0], device=k.device)) % self.K
        self.queue.index_copy_(1, slots, keys.T.to(self.queue.dtype))
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % self.K)

    def _check(self, im_q: Tensor, im_k: Tensor) -> None:
        if im_q.shape != im_k.shape or im_q.dim() < 2:
            raise InputError(f"im_q and im_k must be two views of one batch, same shape, got "
                             f"{tuple(im_q.shape)!r} and {tuple(im_k.shape)!r}")
        total = im_q.shape[0] * _world()
        if not self.config.symmetric and total > self.K:
            raise InputError(f"a global batch of {total!r} keys does not fit the queue of "
                             f"{self.K}; make queue_size at least the global batch")

    def example_inputs(self) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(4, 1, 8, 8, generator=g)
        return {"im_q": x, "im_k": x + 0.1 * torch.randn(x.shape, generator=g)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        good = self.example_inputs()
        x = good["im_q"]
        return [{**good, "im_k": x[:2]}, {"im_q": x[0, 0, 0], "im_k": x[0, 0, 0]},
                {"im_q": x.repeat(self.K + 1, 1, 1, 1), "im_k": x.repeat(self.K + 1, 1, 1, 1)}]


# -- across ranks --------------------------------------------------------------------------
def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _rank() -> int:
    return dist.get_rank() if _world() > 1 else 0


@torch.no_grad()
def _gather(x: Tensor) -> Tensor:
    """The rows of ``x`` of every rank, in rank order (no gradient)."""
    world = _world()
    if world == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


@torch.no_grad()
def shuffle_batch(x: Tensor) -> tuple[Tensor, Tensor]:
    """This rank's slice of the global batch under a permutation drawn on rank 0; returns it
    and the inverse permutation for :func:`unshuffle_batch`."""
    everything = _gather(x)  # (N·W, ...)
    perm = torch.randperm(everything.shape[0], device=x.device)
    dist.broadcast(perm, src=0)
    return everything[perm.view(_world(), -1)[_rank()]], perm.argsort()


@torch.no_grad()
def unshuffle_batch(x: Tensor, undo: Tensor) -> Tensor:
    """Undo :func:`shuffle_batch`: this rank's own samples, in their order."""
    return _gather(x)[undo.view(_world(), -1)[_rank()]]
