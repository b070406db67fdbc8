"""ArcFace and Partial FC on CPU: zoo-face against pytorch-metric-learning, same run.

    .venv/bin/python benchmarks/face_cpu.py [--classes 10000 100000] [--repeats 5] [--floor]

Forward+backward of ArcFace (batches 128 and 256, 512-d, s = 64, m = 0.5) for ours and for
``pytorch_metric_learning.losses.ArcFaceLoss`` (losses checked equal first; it has no speed
settings, so its default is its fastest), interleaved. The goal (issue 27: ≥ 3× at C = 100k)
is set on batch 128, the issue's row; batch 256 is reported beside it;
then Partial FC at sample rate 0.1 against full FC (r = 1), and the memory of the centre
gradient. ``--floor`` also times ours against its three (B, C, D) matmuls alone (the
forward logits, ∂/∂x, ∂/∂W into preallocated outputs): what no float32 ArcFace goes below.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import torch

import zoo_core as zoo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Bench  # noqa: E402


def step(loss: torch.nn.Module, x: torch.Tensor, t: torch.Tensor):
    def run() -> None:
        loss.zero_grad(set_to_none=True)
        x.grad = None
        loss(x, t).backward()
    return run


def matmuls(b: int, c: int, d: int):
    """The three matmuls of an ArcFace step, into preallocated outputs (no page faults)."""
    w, x, e = torch.randn(c, d), torch.randn(b, d), torch.randn(b, c)
    outs = torch.empty(b, c), torch.empty(b, d), torch.empty(c, d)

    def run() -> None:
        torch.mm(x, w.t(), out=outs[0])
        torch.mm(e, w, out=outs[1])
        torch.mm(e.t(), x, out=outs[2])
    return run


def grad_bytes(p: torch.Tensor) -> int:
    g = p.grad
    if g.is_sparse:
        g = g.coalesce()
        return g.values().numel() * g.values().element_size() + g.indices().numel() * 8
    return g.numel() * g.element_size()


def compare_arcface(bench: Bench, args: argparse.Namespace, b: int, c: int,
                    peer_class: type) -> None:
    x = torch.randn(b, args.dim, requires_grad=True)
    t = torch.randint(0, c, (b,))
    ours = zoo.create("loss:arcface", embedding_size=args.dim, num_classes=c, s=64.0, m=0.5)
    peer = peer_class(num_classes=c, embedding_size=args.dim, margin=math.degrees(0.5),
                      scale=64)
    with torch.no_grad():
        peer.W.copy_(ours.weight.t())
    bench.compare(f"ArcFace fwd+bwd {b}×{args.dim}, C={c:,}",
                  peer=("pytorch-metric-learning", step(peer, x, t)), ours=step(ours, x, t),
                  repeats=args.repeats, goal=3.0 if c >= 100_000 and b == 128 else None,
                  check=lambda: torch.testing.assert_close(ours(x, t), peer(x, t),
                                                           rtol=1e-4, atol=1e-4))
    if args.floor:
        bench.compare(f"ArcFace fwd+bwd {b}×{args.dim}, C={c:,}, vs its matmuls",
                      peer=("the three matmuls alone", matmuls(b, c, args.dim)),
                      ours=step(ours, x, t), baseline=True, repeats=args.repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--batch", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--floor", action="store_true",
                    help="also time ours against its three matmuls alone (a baseline)")
    args = ap.parse_args()
    bench = Bench("face_cpu", threads=args.threads)
    from pytorch_metric_learning.losses import ArcFaceLoss

    torch.manual_seed(0)
    for c in args.classes:
        for b in args.batch:
            compare_arcface(bench, args, b, c, ArcFaceLoss)
    c, b = args.classes[-1], args.batch[-1]
    x = torch.randn(b, args.dim, requires_grad=True)
    t = torch.randint(0, c, (b,))
    full = zoo.create("loss:partial-fc", loss="arcface", embedding_size=args.dim,
                      num_classes=c, sample_rate=1.0)
    for sparse in (False, True):
        part = zoo.create("loss:partial-fc", loss="arcface", embedding_size=args.dim,
                          num_classes=c, sample_rate=0.1, sparse_grad=sparse)
        bench.compare(f"Partial FC r=0.1, C={c:,} ({'sparse' if sparse else 'dense'} grad)",
                      peer=("full FC r=1", step(full, x, t)), ours=step(part, x, t),
                      baseline=True,
                      repeats=args.repeats)
        if sparse:
            bench.record(f"centre gradient memory, C={c:,}, r=0.1 sparse",
                         peer=("full FC r=1", grad_bytes(full.margin_loss.weight) / 2**20),
                         baseline=True,
                         ours=grad_bytes(part.margin_loss.weight) / 2**20, unit="MiB",
                         higher_is_better=False)
    bench.finish()


if __name__ == "__main__":
    main()
