"""Throughput of zoo-rnn's LSTM and GRU layers against torch.nn in the same run.

2-layer, hidden 512 (input 512), batch 32 × 100 steps, forward + backward, fp32 on CPU.
Prints sequences per second for torch.nn, ours (fused recurrence, the default) and ours with
``fused=False`` (cells stepping under autograd), each the best of ``--repeats`` timed runs
after a warm-up, interleaved so that load from other processes hits all alike.

    python benchmarks/rnn_cpu.py [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from zoo_rnn.recurrent import GRU, LSTM


def _seconds(module: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    y, _ = module(x)
    y.sum().backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kinds", default="lstm,gru")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, dev = args.hidden, torch.device(args.device)
    x = torch.randn(args.steps, args.batch, h, device=dev)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}; "
          f"2 layers, hidden {h}, batch {args.batch} x {args.steps} steps, fwd+bwd")
    print(f"{'layer':<6} {'impl':<16} {'seq/s':>8} {'vs torch.nn':>12}")
    for kind in args.kinds.split(","):
        ref = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](h, h, num_layers=2).to(dev)
        ours = {"lstm": LSTM, "gru": GRU}[kind]
        impls = {"torch.nn": ref, "zoo (fused)": ours.from_torch(ref).to(dev),
                 "zoo fused=False": ours.from_torch(ref, fused=False).to(dev)}
        best = dict.fromkeys(impls, float("inf"))
        for _ in range(2):  # warm-up round, not timed
            for module in impls.values():
                _seconds(module, x)
        for _ in range(args.repeats):
            for name, module in impls.items():
                best[name] = min(best[name], _seconds(module, x))
        base = args.batch / best["torch.nn"]
        for name, t in best.items():
            rate = args.batch / t
            print(f"{kind:<6} {name:<16} {rate:8.1f} {rate / base:11.2f}x", flush=True)


if __name__ == "__main__":
    main()
