"""InfoNCE, van den Oord et al. 2018 (arXiv:1807.03748), Eq. 4, in MoCo's form (He et al.
2020, Eq. 1):

    L_q = −log( exp(q·k₊ / T) / (exp(q·k₊ / T) + Σᵢ exp(q·kᵢ / T)) )

averaged over the queries; ``q`` and the keys are L2-normalised first (``normalize=True``), so
the dot products are cosine similarities. The negatives ``kᵢ`` are given (MoCo's queue,
``negatives`` (K, C)) or, without them, the other rows' positives (in-batch negatives, the form
of MoCo v3 and SimCLR).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo_core import ConfigError, InputError, Loss


class InfoNCE(Loss):
    """``loss(query, positive_key, negatives=None)`` → scalar.

    Args:
        temperature: ``T`` (MoCo v1 0.07, v2 0.2).
        normalize: L2-normalise queries and keys first.

    Example:
        >>> loss = zoo.create("loss:infonce", temperature=0.2)
        >>> loss(q, k, negatives=queue.T)            # (N, C), (N, C), (K, C)
    """

    def __init__(self, temperature: float = 0.2, normalize: bool = True) -> None:
        super().__init__()
        if temperature <= 0.0:
            raise ConfigError(f"temperature {temperature!r} must be > 0; MoCo v2 uses 0.2")
        self.temperature, self.normalize = temperature, normalize

    def forward(self, input: Tensor, target: Tensor,  # noqa: A002 - the kind's signature
                negatives: Tensor | None = None) -> Tensor:
        q, k = input, target
        if q.dim() != 2 or q.shape != k.shape:
            raise InputError(f"query and positive key must both be (N, C), got shapes "
                             f"{tuple(q.shape)!r} and {tuple(k.shape)!r}")
        if negatives is not None and (negatives.dim() != 2 or negatives.shape[1] != q.shape[1]):
            raise InputError(f"negatives must be (K, C) with C = {q.shape[1]}, got shape "
                             f"{tuple(negatives.shape)!r}; pass MoCo's queue as queue.T")
        if self.normalize:
            q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
            negatives = None if negatives is None else F.normalize(negatives, dim=1)
        if negatives is None:  # row i's positive is key i, the other keys its negatives
            logits = q @ k.T  # (N, N)
            labels = torch.arange(q.shape[0], device=q.device)
        else:
            logits = torch.cat([(q * k).sum(1, keepdim=True), q @ negatives.T], dim=1)
            labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits / self.temperature, labels)

    def example_inputs(self) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(0)
        q = torch.randn(6, 8, generator=g).requires_grad_()
        return q, q.detach() + 0.3 * torch.randn(6, 8, generator=g)

    def bad_inputs(self) -> list[tuple[Tensor, Tensor]]:
        q, k = self.example_inputs()
        return [(q, k[:3]), (q[0], k[0])]
