"""The kit's gloo runner: every rank joins one process group; results come back in order; a
failing rank ends the run at once with its traceback."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist

from zoo_core.testing import WorkerError, run_distributed


def _sum_ranks(rank: int, world_size: int, n: int) -> list[float]:
    t = torch.full((n,), float(rank + 1))
    dist.all_reduce(t)
    return [float(world_size), *t.tolist()]


def test_ranks_share_one_process_group() -> None:
    assert run_distributed(_sum_ranks, 3) == [[2.0, 3.0, 3.0, 3.0]] * 2


def _fail_on_rank_one(rank: int, world_size: int) -> None:
    if rank == 1:
        raise KeyError("rank one refuses")
    dist.all_reduce(torch.ones(1))  # rank 0 waits here for a rank that never comes


def _die_on_rank_one(rank: int, world_size: int) -> None:
    if rank == 1:
        os._exit(3)
    dist.all_reduce(torch.ones(1))


def _unpicklable(rank: int, world_size: int) -> object:
    return (lambda: rank) if rank == 0 else None


@pytest.mark.timeout(120)
def test_failing_rank_fails_fast_with_its_traceback() -> None:
    # the run's own timeout is far away: only failing fast gets the traceback in time
    with pytest.raises(WorkerError) as err:
        run_distributed(_fail_on_rank_one, timeout=100)
    assert err.value.rank == 1
    text = str(err.value)
    assert "Traceback" in text and "_fail_on_rank_one" in text
    assert "KeyError: 'rank one refuses'" in text


@pytest.mark.timeout(120)
def test_dead_rank_and_unpicklable_result_are_reported() -> None:
    with pytest.raises(WorkerError, match="rank 1: exited with code 3"):
        run_distributed(_die_on_rank_one, timeout=100)
    with pytest.raises(WorkerError, match="(?s)rank 0: raised:.*pickle"):
        run_distributed(_unpicklable, timeout=100)
