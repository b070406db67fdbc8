"""End to end without a face dataset: train on synthetic identities, verify on unseen ones.

A backbone (``model:iresnet`` by default, a small configuration) is trained with a
classification loss over the first ``train_ids`` synthetic identities
(:mod:`zoo_face.synthetic`), then embeds flip-fused, unit-norm features of pairs drawn from
``test_ids`` further identities it never saw; the pairs are scored by cosine similarity and
evaluated with the LFW protocol (10-fold accuracy) and TAR@FAR (:mod:`zoo_face.verification`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any

import torch

import zoo_core as zoo

from .synthetic import SyntheticFaces
from .verification import embed, evaluate, pair_scores

SMALL_IRESNET = {"layers": (1, 1, 1, 1), "widths": (16, 32, 64, 128), "stem_width": 16,
                 "input_size": 32, "embedding_size": 128}


def train_and_verify(loss: str = "arcface", *, steps: int = 400, batch_size: int = 128,
                     train_ids: int = 500, test_ids: int = 200, num_pairs: int = 3000,
                     lr: float = 0.1, weight_decay: float = 5e-4, seed: int = 0,
                     backbone: str = "model:iresnet", backbone_config: dict | None = None,
                     loss_options: dict | None = None, log_every: int = 0,
                     device: torch.device | str = "cpu", strength: float = 1.0,
                     save_to: str | os.PathLike[str] | None = None, progress: bool | None = None,
                     ) -> dict[str, Any]:
    """Train ``backbone`` with ``loss:<loss>`` on synthetic identities; verify on unseen ones.

    ``save_to`` writes the trained backbone as a model folder (``zoo.load("dir:…")``), its
    config's ``threshold`` set to the median of the 10 folds' best thresholds. ``progress``
    shows a bar (``None``: on a terminal only); ``log_every`` updates its loss figure.

    Returns:
        The verification results (``accuracy``, ``accuracy_std``, ``auc``, ``tar@far=…``) plus
        ``loss`` (name), ``final_loss``, ``train_seconds`` and ``threshold``.
    """
    torch.manual_seed(seed)
    config = dict(SMALL_IRESNET if backbone_config is None else backbone_config)
    model = zoo.create(backbone, **config).to(device)
    size, dim = model.config.input_size, model.config.embedding_size
    head = zoo.create(f"loss:{loss}", embedding_size=dim, num_classes=train_ids,
                      **(loss_options or {})).to(device)
    data = SyntheticFaces(train_ids + test_ids, size=size, seed=seed, strength=strength)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.SGD([p for p in params if p.requires_grad], lr=lr, momentum=0.9,
                          weight_decay=weight_decay, nesterov=True)
    warmup = max(steps // 20, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min((i + 1) / warmup, 0.5 * (
        1 + math.cos(math.pi * min(i, steps) / steps))))
    g = torch.Generator().manual_seed(seed + 1)
    model.train()
    head.train()
    t0, recent = time.perf_counter(), []
    with zoo.progress(total=steps, desc=f"{loss} on {backbone}", unit="step",
                      disable=None if progress is None else not progress) as bar:
        for step in range(steps):
            ids = torch.randint(0, train_ids, (batch_size,), generator=g)
            images, labels = data.batch(ids, g, device)
            value = head(model(images), labels)
            opt.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            recent = (recent + [float(value.detach())])[-20:]
            show = not log_every or (step + 1) % log_every == 0
            bar.update(1, **({"loss": sum(recent) / len(recent)} if show else {}))
    seconds = time.perf_counter() - t0
    model.eval()
    test = torch.arange(train_ids, train_ids + test_ids)
    gp = torch.Generator().manual_seed(seed + 2)       # same pairs for every loss
    a, b, same = data.pairs(test, num_pairs, gp, device)
    scores = pair_scores(embed(model, a), embed(model, b)).cpu()
    out = evaluate(scores, same, folds=10)
    threshold = float(out["thresholds"].median())
    out.update({"loss": loss, "final_loss": sum(recent) / max(len(recent), 1),
                "train_seconds": seconds, "threshold": threshold})
    if save_to is not None:
        model.config = dataclasses.replace(model.config, threshold=threshold)
        model.save_pretrained(save_to)
    return out
