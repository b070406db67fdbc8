"""The tangent projection of the centre gradient, by blocks of rows that stay in cache."""

from __future__ import annotations

import torch
from torch import Tensor


def project_rows_(m: Tensor, w: Tensor, scale: Tensor, *, block: int = 1024) -> Tensor:
    """``m_j ← m_j − scale_j ⟨m_j, w_j⟩ w_j`` for every row j of (C, D) ``m`` and ``w``.

    On CPU by blocks of rows, so that the update reads the rows the dot products have just
    brought into cache (one pass over ``m`` and ``w`` from memory instead of two, and no C
    tiny matrix products as ``bmm`` would run); on other devices in two whole passes.
    """
    if m.device.type != "cpu":
        dot = torch.linalg.vecdot(m, w, dim=1)
        return m.addcmul_(w, (dot * scale)[:, None], value=-1)
    prod = torch.empty(min(block, m.shape[0]), m.shape[1], dtype=m.dtype)  # reused per block
    dot = torch.empty(m.shape[0], dtype=m.dtype)
    for i in range(0, m.shape[0], block):
        mb, wb = m[i:i + block], w[i:i + block]
        db = dot[i:i + block]
        torch.sum(torch.mul(mb, wb, out=prod[:mb.shape[0]]), 1, out=db).mul_(scale[i:i + block])
        mb.addcmul_(wb, db[:, None], value=-1)
    return m
