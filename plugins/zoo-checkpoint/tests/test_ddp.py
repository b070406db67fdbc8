"""Checkpointed blocks under DistributedDataParallel (2 gloo processes) give the gradients of
the un-checkpointed DDP run."""

from __future__ import annotations

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP
from zoo_checkpoint.example import ResidualMLP, ResidualMLPConfig
from zoo_checkpoint.transform import Checkpoint

POLICIES = ("none", "every", "sqrt", "selective")


def _worker(rank: int, port: int, queue) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
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
        queue.put((rank, out))
    finally:
        dist.destroy_process_group()


def test_ddp_two_gloo_processes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(queue.get(timeout=180) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for rank in (0, 1):
        want = got[rank]["none"]
        for policy in POLICIES[1:]:
            for name, grad in want.items():
                torch.testing.assert_close(torch.from_numpy(got[rank][policy][name]),
                                           torch.from_numpy(grad), rtol=1e-6, atol=1e-6,
                                           msg=f"rank {rank} {policy}: {name}")
    for name in got[0]["none"]:  # DDP averaged the two ranks' gradients
        assert (got[0]["sqrt"][name] == got[1]["sqrt"][name]).all()
