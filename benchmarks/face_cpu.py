"""ArcFace and Partial FC on CPU: zoo-face against pytorch-metric-learning, same run.

    .venv/bin/python benchmarks/face_cpu.py [--classes 10000 100000] [--repeats 5]

Prints one table: forward+backward time of ArcFace (batch 256, 512-d) for ours and for
``pytorch_metric_learning.losses.ArcFaceLoss``, with the ratio; then Partial FC at
sample rate 0.1 against full FC (r = 1): time and the memory of the centre gradient.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

import zoo_core as zoo


def bench(fn, repeats: int) -> float:
    fn()                                   # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def step(loss: torch.nn.Module, x: torch.Tensor, t: torch.Tensor):
    def run() -> None:
        loss.zero_grad(set_to_none=True)
        x.grad = None
        loss(x, t).backward()
    return run


def grad_bytes(p: torch.Tensor) -> int:
    g = p.grad
    if g.is_sparse:
        g = g.coalesce()
        return g.values().numel() * g.values().element_size() + g.indices().numel() * 8
    return g.numel() * g.element_size()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from pytorch_metric_learning.losses import ArcFaceLoss

    torch.manual_seed(0)
    rows = []
    for c in args.classes:
        x = torch.randn(args.batch, args.dim, requires_grad=True)
        t = torch.randint(0, c, (args.batch,))
        ours = zoo.create("loss:arcface", embedding_size=args.dim, num_classes=c, s=64.0, m=0.5)
        peer = ArcFaceLoss(num_classes=c, embedding_size=args.dim, margin=math.degrees(0.5),
                           scale=64)
        with torch.no_grad():
            peer.W.copy_(ours.weight.t())
        torch.testing.assert_close(ours(x, t), peer(x, t), rtol=1e-4, atol=1e-4)
        t_peer = bench(step(peer, x, t), args.repeats)
        t_ours = bench(step(ours, x, t), args.repeats)
        rows.append((f"ArcFace fwd+bwd C={c:,}", "pml ArcFaceLoss", t_peer, t_ours))

    c = args.classes[-1]
    x = torch.randn(args.batch, args.dim, requires_grad=True)
    t = torch.randint(0, c, (args.batch,))
    full = zoo.create("loss:partial-fc", loss="arcface", embedding_size=args.dim,
                      num_classes=c, sample_rate=1.0)
    part = zoo.create("loss:partial-fc", loss="arcface", embedding_size=args.dim,
                      num_classes=c, sample_rate=0.1)
    sparse = zoo.create("loss:partial-fc", loss="arcface", embedding_size=args.dim,
                        num_classes=c, sample_rate=0.1, sparse_grad=True)
    t_full = bench(step(full, x, t), args.repeats)
    t_part = bench(step(part, x, t), args.repeats)
    t_sparse = bench(step(sparse, x, t), args.repeats)
    rows.append((f"Partial FC r=0.1 C={c:,} (dense grad)", "full FC r=1", t_full, t_part))
    rows.append((f"Partial FC r=0.1 C={c:,} (sparse grad)", "full FC r=1", t_full, t_sparse))
    mem_full = grad_bytes(full.margin_loss.weight) / 2**20
    mem_sparse = grad_bytes(sparse.margin_loss.weight) / 2**20

    print(f"\nCPU: {torch.get_num_threads()} threads, torch {torch.__version__}, batch "
          f"{args.batch}, dim {args.dim}, median of {args.repeats}\n")
    print(f"| {'case':<40} | {'peer':<16} | {'peer ms':>9} | {'ours ms':>9} | {'speed-up':>8} |")
    print(f"|{'-' * 42}|{'-' * 18}|{'-' * 11}|{'-' * 11}|{'-' * 10}|")
    for case, name, tp, to in rows:
        print(f"| {case:<40} | {name:<16} | {tp:9.1f} | {to:9.1f} | {tp / to:7.2f}x |")
    print(f"\ncentre gradient memory at C={c:,}: full FC {mem_full:.1f} MiB, Partial FC r=0.1 "
          f"sparse {mem_sparse:.1f} MiB (ratio {mem_sparse / mem_full:.3f}); dense-gradient "
          f"Partial FC keeps a {mem_full:.1f} MiB gradient")


if __name__ == "__main__":
    main()
