"""Extra memory and time of kernel:attention's ``torch`` backend against naive attention (CPU).

Naive attention materialises the (B, H, S, S) scores and probabilities; the ``torch``
backend (FlashAttention-2's blockwise algorithm in plain PyTorch) keeps only (block × block)
tiles, so its extra memory grows as O(S). SDPA on CPU is measured beside them. Goal: at
S = 8192 the torch backend needs ≤ 1/50 of naive's extra memory.

Each measurement runs in a fresh subprocess: inputs are allocated, the peak resident set
size (VmHWM) is reset through /proc/self/clear_refs, the call runs, and extra memory =
peak − resident size before the call (the output counts in every row). The workers run with
``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc returns freed blocks to the system at once and
the peak RSS follows the live tensors rather than allocator caching. Time is the median
of three runs in another subprocess with the default allocator. Linux only; fp32;
B = 1, H = 1, D = 64 by default.

Usage:
    python benchmarks/attention_memory.py [--seqlen 8192] [--heads 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(method: str, mode: str, what: str, s: int, h: int, d: int, threads: int
           ) -> dict:
    """One measurement, in this (fresh) process."""
    import math

    import torch

    torch.set_num_threads(threads)
    if method == "torch":
        sys.path.insert(0, str(ROOT / "plugins" / "zoo-flashattn" / "src"))
        from zoo_flashattn.attention import Attention

        attn = Attention()

        def fn(q, k, v):
            return attn(q, k, v, backend="torch")
    elif method == "sdpa":
        def fn(q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)
    else:
        def fn(q, k, v):
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, S, S)
            return scores.softmax(-1) @ v

    def call(q, k, v, do):
        if mode == "fwd":
            with torch.no_grad():
                return fn(q, k, v)
        out = fn(q, k, v)
        out.backward(do)
        return out

    def inputs(n):
        g = torch.Generator().manual_seed(0)
        xs = [torch.randn(1, h, n, d, generator=g) for _ in range(4)]
        for x in xs[:3]:
            x.requires_grad_(mode == "fwd+bwd")
        return xs

    call(*inputs(256))  # warm up: kernels and allocator pools
    q, k, v, do = inputs(s)
    if what == "memory":
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS
        before = _status("VmRSS")
        call(q, k, v, do)
        return dict(extra_mib=(_status("VmHWM") - before) / 2**20)
    times = []
    for _ in range(3):
        for x in (q, k, v):
            x.grad = None
        t0 = time.perf_counter()
        call(q, k, v, do)
        times.append(time.perf_counter() - t0)
    return dict(seconds=statistics.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqlen", type=int, default=8192)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.seqlen, args.heads, args.head_dim,
                                args.threads)))
        return
    rows = []
    for mode in ("fwd", "fwd+bwd"):
        for method in ("naive", "sdpa", "torch"):
            row = dict(method=method, mode=mode)
            for what in ("memory", "time"):
                cmd = [sys.executable, __file__, "--worker", method, mode, what, "--seqlen",
                       str(args.seqlen), "--heads", str(args.heads), "--head-dim",
                       str(args.head_dim), "--threads", str(args.threads)]
                env = dict(os.environ)
                if what == "memory":  # see the docstring
                    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
                res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
                row.update(json.loads(res.stdout.strip().splitlines()[-1]))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nCPU, fp32, B=1, H={args.heads}, S={args.seqlen}, D={args.head_dim}, "
          f"{args.threads} threads")
    print("| mode | method | extra MiB | vs naive | seconds | speed vs naive |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        base = next(x for x in rows if x["mode"] == r["mode"] and x["method"] == "naive")
        print(f"| {r['mode']} | {r['method']} | {r['extra_mib']:.1f} | "
              f"1/{base['extra_mib'] / max(r['extra_mib'], 1e-3):.0f} | {r['seconds']:.2f} | "
              f"{base['seconds'] / r['seconds']:.2f}x |")


if __name__ == "__main__":
    main()
