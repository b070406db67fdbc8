"""TFLOP/s of kernel:attention's Triton kernels against SDPA-flash, cuDNN and FlexAttention.

FlashAttention's convention: forward = 4·B·H·S²·D FLOPs (halved when causal), backward =
2.5 × forward, so forward+backward = 3.5 × forward. bf16, hidden size 2048 (H = 2048 / D)
and 32k tokens per batch (B = 32768 / S), D ∈ {64, 128}, S ∈ {1k, 4k, 16k}, causal or not.
Every number in a row comes from the same run on the same GPU; each is the median of
``triton.testing.do_bench``. The ``err`` column is ‖ours − SDPA-flash‖ / ‖SDPA-flash‖ of
the forward output, ``grad err`` the largest of dq, dk, dv's (same do).

Usage (a CUDA GPU is required):
    python benchmarks/attention_gpu.py [--quick] [--flex-budget-s 150] [--out DIR]

Before timing, the Triton configs are compiled in parallel worker processes (one config of
each kernel per worker) into Triton's on-disk cache, so autotuning in the main process only
times them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "plugins" / "zoo-flashattn" / "src"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

HIDDEN, TOKENS = 2048, 32768


def cells(quick: bool) -> list[tuple[int, int, bool]]:
    seqs = (1024, 4096) if quick else (1024, 4096, 16384)
    return [(d, s, c) for d in (64, 128) for s in seqs for c in (False, True)]


def _warm(task: tuple[int, bool, int]) -> str:
    """Compile one candidate config of each kernel for (D, causal) into the disk cache."""
    import torch
    from zoo_flashattn import triton_backend
    from zoo_flashattn.attention import Attention

    d, causal, index = task
    t0 = time.time()
    triton_backend.force_config(index)
    q, k, v = (torch.randn(1, HIDDEN // d, 1024, d, device="cuda", dtype=torch.bfloat16,
                           requires_grad=True) for _ in range(3))
    try:
        Attention()(q, k, v, causal=causal, backend="triton").sum().backward()
        torch.cuda.synchronize()
    except Exception as e:  # a config that does not fit: autotuning skips it too
        return f"D={d} causal={causal} config#{index}: {type(e).__name__}: {str(e)[:200]}"
    return f"D={d} causal={causal} config#{index}: {time.time() - t0:.1f}s"


def prewarm(quick: bool) -> None:
    import multiprocessing as mp

    tasks = [(d, c, i) for d in (64, 128) for c in (False, True) for i in range(5)]
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=min(len(tasks), os.cpu_count() or 4),
                             mp_context=mp.get_context("spawn")) as pool:
        for line in pool.map(_warm, tasks):
            print("  warm", line, flush=True)
    print(f"prewarm: {len(tasks)} compile tasks in {time.time() - t0:.1f}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="S in {1k, 4k} only")
    ap.add_argument("--flex-budget-s", type=float, default=120.0,
                    help="stop measuring FlexAttention (compiles per shape) after this long")
    ap.add_argument("--no-prewarm", action="store_true")
    ap.add_argument("--out", default=os.environ.get("OUT", ""), help="folder for md/json")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    import triton
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from triton.testing import do_bench
    from zoo_flashattn.attention import Attention

    if not torch.cuda.is_available():
        sys.exit("attention_gpu.py needs a CUDA GPU")
    print(f"GPU {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"triton {triton.__version__}", flush=True)
    if not args.no_prewarm:
        prewarm(args.quick)
    attn = Attention()

    def ours(q, k, v, causal):
        return attn(q, k, v, causal=causal, backend="triton")

    def sdpa(kind):
        def run(q, k, v, causal):
            with sdpa_kernel(kind):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return run

    flex_state: dict = {}
    for knob in ("recompile_limit", "cache_size_limit"):  # one compile per shape and grad mode
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 256)

    def flex(q, k, v, causal):
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        if "fn" not in flex_state:
            flex_state["fn"] = torch.compile(flex_attention)
        key = (q.shape[2], causal)
        if key not in flex_state:
            flex_state[key] = create_block_mask(lambda b, h, i, j: i >= j, None, None,
                                                q.shape[2], q.shape[2]) if causal else None
        return flex_state["fn"](q, k, v, block_mask=flex_state[key])

    impls = {"ours": ours, "sdpa-flash": sdpa(SDPBackend.FLASH_ATTENTION),
             "cudnn": sdpa(SDPBackend.CUDNN_ATTENTION), "flex": flex}

    def measure(fn, q, k, v, do):
        fwd = do_bench(lambda: fn(q, k, v), warmup=25, rep=100, return_mode="median")
        leaves = [x.detach().requires_grad_() for x in (q, k, v)]

        def step():
            fn(*leaves).backward(do)

        both = do_bench(step, warmup=25, rep=150, grad_to_none=leaves, return_mode="median")
        return fwd, both

    def errors(fn, ref_fn, q, k, v, do, causal):
        """‖ours − ref‖ / ‖ref‖ of the output, and the largest of dq, dk, dv."""
        got, want = [], []
        for f, acc in ((fn, got), (ref_fn, want)):
            leaves = [x.detach().requires_grad_() for x in (q, k, v)]
            out = f(*leaves, causal)
            out.backward(do)
            acc.extend([out.detach(), *(x.grad for x in leaves)])
        rel = [((a.float() - b.float()).norm() / b.float().norm()).item()
               for a, b in zip(got, want, strict=True)]
        return rel[0], max(rel[1:])

    results = []
    flex_spent = 0.0
    for name in impls:
        for d, s, causal in cells(args.quick):
            h, b = HIDDEN // d, TOKENS // s
            g = torch.Generator(device="cuda").manual_seed(0)
            q, k, v, do = (torch.randn(b, h, s, d, device="cuda", generator=g,
                                       dtype=torch.bfloat16) for _ in range(4))
            f_fwd = 4 * b * h * s * s * d / (2 if causal else 1)
            row = dict(impl=name, d=d, s=s, causal=causal)
            if name == "flex" and flex_spent > args.flex_budget_s:
                row["error"] = "skipped: flex compile budget spent"
            else:
                t0 = time.time()
                try:
                    fn = lambda q, k, v, fn=impls[name], c=causal: fn(q, k, v, c)  # noqa: E731
                    fwd, both = measure(fn, q, k, v, do)
                    row.update(fwd_tflops=f_fwd / fwd / 1e9, fwdbwd_tflops=3.5 * f_fwd / both / 1e9)
                    if name == "ours":
                        row["err"], row["grad_err"] = errors(ours, impls["sdpa-flash"], q, k,
                                                             v, do, causal)
                except Exception as e:  # a peer that does not run here is reported, not fatal
                    row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
                if name == "flex":
                    flex_spent += time.time() - t0
            results.append(row)
            print(json.dumps(row), flush=True)
            del q, k, v, do
            torch.cuda.empty_cache()
    from zoo_flashattn import triton_backend

    for key, cfg in triton_backend.tuned().items():
        print("tuned", key[0], "dtype/D/flags...", key[1:3], key[-2:], "->", cfg)
    table = render(results, cells(args.quick))
    print(table)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "attention_gpu.md").write_text(table + "\n")
        (Path(args.out) / "attention_gpu.json").write_text(json.dumps(results, indent=1))


def render(results: list[dict], grid: list[tuple[int, int, bool]]) -> str:
    by = {(r["impl"], r["d"], r["s"], r["causal"]): r for r in results}
    names = ["ours", "sdpa-flash", "cudnn", "flex"]
    lines = []
    for mode, key in (("forward", "fwd_tflops"), ("forward+backward", "fwdbwd_tflops")):
        lines.append(f"\n{mode}, TFLOP/s (bf16)")
        lines.append("| D | S | causal | " + " | ".join(names)
                     + " | ours/sdpa-flash | ours/cudnn | err | grad err |")
        lines.append("|---" * (len(names) + 7) + "|")
        for d, s, c in grid:
            vals = [by.get((n, d, s, c), {}).get(key) for n in names]
            cellv = [f"{x:.0f}" if x else "—" for x in vals]
            ratio = [f"{vals[0] / x:.2f}" if vals[0] and x else "—" for x in vals[1:3]]
            errs = [by.get(("ours", d, s, c), {}).get(x) for x in ("err", "grad_err")]
            errs_s = [f"{e:.1e}" if e is not None else "—" for e in errs]
            lines.append(f"| {d} | {s} | {c} | " + " | ".join(cellv + ratio + errs_s) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
