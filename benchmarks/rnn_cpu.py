"""Throughput of zoo-rnn's LSTM and GRU layers against torch.nn in the same run.

2 layers, hidden 512, batch 32 × 100 steps, forward + backward, fp32 on CPU, 2 threads: the
LSTM time-major with input 512 and batch-first with input 256, the GRU time-major with input
512. Both modules hold the same weights (ours built with ``from_torch``); outputs are checked
equal before timing; peer and ours alternate (``_harness.Bench``), best of ``--repeats``.

    python benchmarks/rnn_cpu.py [--repeats 7] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from _harness import Bench  # noqa: E402
from torch import nn  # noqa: E402
from zoo_rnn.recurrent import GRU, LSTM  # noqa: E402

CASES = {  # key: (name, torch.nn class, ours, input size, batch_first)
    "lstm": ("LSTM time-major, input 512", nn.LSTM, LSTM, 512, False),
    "lstm-bf": ("LSTM batch-first, input 256", nn.LSTM, LSTM, 256, True),
    "gru": ("GRU time-major, input 512", nn.GRU, GRU, 512, False),
}


def step(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward + backward pass of ``module`` over ``x``."""
    def run() -> None:
        y, _ = module(x)
        y.sum().backward()
        module.zero_grad(set_to_none=True)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    dev = torch.device(args.device)
    bench = Bench("rnn_cpu", threads=args.threads, device=str(dev))
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    for key in args.cases.split(","):
        name, ref_cls, ours_cls, inputs, batch_first = CASES[key]
        torch.manual_seed(0)
        ref = ref_cls(inputs, args.hidden, num_layers=2, batch_first=batch_first).to(dev)
        ours = ours_cls.from_torch(ref)
        shape = (args.batch, args.steps, inputs) if batch_first else \
            (args.steps, args.batch, inputs)
        x = torch.randn(shape, device=dev)

        def check(ref: nn.Module = ref, ours: nn.Module = ours, x: torch.Tensor = x) -> None:
            with torch.no_grad():
                torch.testing.assert_close(ours(x)[0], ref(x)[0], rtol=1e-4, atol=1e-5)

        bench.compare(f"{name}, 2x{args.hidden}, {args.batch}x{args.steps}, fwd+bwd",
                      peer=(f"torch.nn.{ref_cls.__name__}", step(ref, x)), ours=step(ours, x),
                      unit="seq/s", work=args.batch, repeats=args.repeats, goal=1.0,
                      sync=sync, check=check)
    bench.finish()


if __name__ == "__main__":
    main()
