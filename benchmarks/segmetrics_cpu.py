"""Update throughput of metric:segmentation vs torchmetrics MulticlassJaccardIndex.

8 x 512 x 512 predictions, 21 classes, 10% of the target ignored (255). Ours computes every
score (PA, MPA, MIoU, FWIoU, Dice, precision, recall) from one matrix; torchmetrics computes
the Jaccard index alone. Both are fed the same inputs in the same run; the median over
repeats is reported in Mpix/s. Runs on CUDA too when one is present (``--device cuda``).

    python benchmarks/segmetrics_cpu.py [--repeats 10] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchmetrics.classification import MulticlassJaccardIndex

import zoo_core as zoo


def timed(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    g = torch.Generator().manual_seed(0)
    N, H, W, C = 8, 512, 512, 21
    target = torch.randint(0, C, (N, H, W), generator=g)
    target[torch.rand(N, H, W, generator=g) < 0.1] = 255
    preds = torch.randint(0, C, (N, H, W), generator=g)
    logits = torch.randn(N, C, H, W, generator=g)
    target, preds, logits = target.to(dev), preds.to(dev), logits.to(dev)
    mpix = N * H * W / 1e6

    rows = []
    for name, p in (("labels (N, H, W)", preds), ("logits (N, C, H, W)", logits)):
        ours = zoo.create("metric:segmentation", num_classes=C, ignore_index=255)
        ours.to(dev)
        tm = MulticlassJaccardIndex(C, ignore_index=255, average="macro").to(dev)
        t_ours = timed(lambda p=p, m=ours: m.update(p, target), args.repeats, dev)
        t_tm = timed(lambda p=p, m=tm: m.update(p, target), args.repeats, dev)
        # same answer, or the timing means nothing
        ours.reset()
        tm.reset()
        ours.update(p, target)
        tm.update(p, target)
        assert abs(ours.compute()["mean_iou"] - float(tm.compute())) < 1e-5
        rows.append((name, mpix / t_tm, mpix / t_ours, t_tm / t_ours))

    print(f"device: {dev} ({torch.get_num_threads()} threads), {N}x{H}x{W}, {C} classes, "
          f"10% ignored, median of {args.repeats}")
    print("| preds | torchmetrics MulticlassJaccardIndex (Mpix/s) | zoo metric:segmentation, "
          "all metrics (Mpix/s) | ratio |")
    print("|---|---:|---:|---:|")
    for name, a, b, r in rows:
        print(f"| {name} | {a:.1f} | {b:.1f} | {r:.2f}x |")


if __name__ == "__main__":
    main()
