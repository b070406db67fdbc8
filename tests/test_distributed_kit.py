"""The kit's gloo runner: every rank joins one process group; results come back in order."""

from __future__ import annotations

import torch
import torch.distributed as dist

from zoo_core.testing import run_distributed


def _sum_ranks(rank: int, world_size: int, n: int) -> list[float]:
    t = torch.full((n,), float(rank + 1))
    dist.all_reduce(t)
    return [float(world_size), *t.tolist()]


def test_ranks_share_one_process_group() -> None:
    assert run_distributed(_sum_ranks, 3) == [[2.0, 3.0, 3.0, 3.0]] * 2
