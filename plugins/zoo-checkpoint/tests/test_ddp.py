"""Checkpointed blocks under DistributedDataParallel (2 gloo processes) give the gradients of
the un-checkpointed DDP run."""

from __future__ import annotations

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from zoo_checkpoint.example import ResidualMLP, ResidualMLPConfig
from zoo_checkpoint.transform import Checkpoint

from zoo_core.testing import run_distributed

POLICIES = ("none", "every", "sqrt", "selective")


def _worker(rank: int, world_size: int) -> dict:
    out = {}
    for policy in POLICIES:
        torch.manual_seed(0)
        model = ResidualMLP(ResidualMLPConfig(depth=4, dropout=0.1))
        Checkpoint(policy).apply(model)  # no registry scan in the workers
        ddp = DDP(model)
        g = torch.Generator().manual_seed(10 + rank)
        x = torch.randn(4, 8, generator=g)
        torch.manual_seed(100 + rank)
        ddp(x).pow(2).mean().backward()
        out[policy] = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    return out


def test_ddp_two_gloo_processes():
    got = run_distributed(_worker)
    for rank in (0, 1):
        want = got[rank]["none"]
        for policy in POLICIES[1:]:
            for name, grad in want.items():
                torch.testing.assert_close(torch.from_numpy(got[rank][policy][name]),
                                           torch.from_numpy(grad), rtol=1e-6, atol=1e-6,
                                           msg=f"rank {rank} {policy}: {name}")
    for name in got[0]["none"]:  # DDP averaged the two ranks' gradients
        assert (got[0]["sqrt"][name] == got[1]["sqrt"][name]).all()
