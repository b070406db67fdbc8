"""Train and evaluate a segmentation model on :class:`~zoo_dilated.data.SyntheticShapes`.

Loss: pixel-wise cross-entropy over non-ignored pixels, plus 0.4 × the auxiliary head's
(``aux_logits``), as in PSPNet/DeepLab practice; AdamW with the "poly" schedule of DeepLab,
``lr · (1 − step / steps)^0.9``. Evaluation streams predictions into ``metric:segmentation``
(through the registry).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import zoo_core as zoo

from .data import IGNORE_INDEX


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did: steps, final loss, seconds."""

    steps: int
    final_loss: float
    seconds: float


def segmentation_loss(out: dict[str, torch.Tensor], target: torch.Tensor,
                      aux_weight: float = 0.4) -> torch.Tensor:
    """Cross-entropy on ``logits`` (+ ``aux_weight`` × on ``aux_logits``), ignoring 255."""
    loss = F.cross_entropy(out["logits"], target, ignore_index=IGNORE_INDEX)
    if "aux_logits" in out:
        loss = loss + aux_weight * F.cross_entropy(out["aux_logits"], target,
                                                   ignore_index=IGNORE_INDEX)
    return loss


def train(model: nn.Module, data: Dataset[Any], steps: int, batch_size: int = 8,
          lr: float = 2e-3, weight_decay: float = 1e-4, seed: int = 0) -> TrainResult:
    """Train ``model`` for ``steps`` optimiser steps (cycling over ``data``)."""
    torch.manual_seed(seed)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 - s / steps) ** 0.9)
    model.train()
    step, loss, start = 0, torch.tensor(float("nan")), time.perf_counter()
    while step < steps:
        for images, labels in loader:
            loss = segmentation_loss(model(images), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step == steps:
                break
    return TrainResult(steps, float(loss.detach()), time.perf_counter() - start)


def count_macs(model: nn.Module, image_size: int, in_chans: int = 3) -> int:
    """Multiply-accumulates of convolutions and linear layers for one image."""
    total = 0

    def hook(m: nn.Module, inputs: Any, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.weight[0].numel()  # (Cin / groups) · kh · kw
            total += out[0].numel() * k
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, in_chans, image_size, image_size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset[Any], num_classes: int,
             batch_size: int = 16) -> dict[str, Any]:
    """``metric:segmentation`` results of ``model`` on ``data`` (eval mode)."""
    metric = zoo.create("metric:segmentation", num_classes=num_classes,
                        ignore_index=IGNORE_INDEX)
    model.eval()
    for images, labels in DataLoader(data, batch_size=batch_size):
        metric.update(model(images)["logits"].argmax(1), labels)
    return dict(metric.compute())
