"""Update throughput of metric:segmentation vs torchmetrics MulticlassJaccardIndex.

8 x 512 x 512 predictions, 21 classes, 10% of the target ignored (255). Ours computes every
score (PA, MPA, MIoU, FWIoU, Dice, precision, recall) from one matrix; torchmetrics computes
the Jaccard index alone, at its fastest: ``validate_args=False`` (its default, True, runs a
``torch.unique`` over the inputs on every update; that figure is reported beside, labelled).
Same inputs, same run, interleaved (benchmarks/_harness.py); figures in Mpix/s. Also the
fraction of the memory-bandwidth bound: the time to read the inputs
once (their bytes at the read bandwidth measured in this run by ``sum()`` over a 512 MB
buffer, larger than any cache) divided by our update's time.

    python benchmarks/segmetrics_cpu.py [--repeats 10] [--device cpu|cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torchmetrics.classification import MulticlassJaccardIndex

import zoo_core as zoo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench  # noqa: E402


def best_time(fn, repeats: int, sync) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    dev = args.device
    bench = Bench("segmetrics_cpu" if dev == "cpu" else "segmetrics_gpu", threads=args.threads,
                  device=dev if dev == "cpu" else torch.cuda.get_device_name())
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    g = torch.Generator().manual_seed(0)
    N, H, W, C = 8, 512, 512, 21
    target = torch.randint(0, C, (N, H, W), generator=g)
    target[torch.rand(N, H, W, generator=g) < 0.1] = 255
    preds = torch.randint(0, C, (N, H, W), generator=g)
    logits = torch.randn(N, C, H, W, generator=g)
    target, preds, logits = target.to(dev), preds.to(dev), logits.to(dev)
    mpix = N * H * W / 1e6
    # read bandwidth: a reduction over a buffer far larger than the caches, same run
    buf = torch.ones(2**27, device=dev)  # 512 MB
    read_gb_s = buf.numel() * 4 / 1e9 / best_time(buf.sum, args.repeats, sync)
    del buf
    print(f"read bandwidth: {read_gb_s:.1f} GB/s (sum() over 512 MB)", flush=True)

    for name, p in (("labels", preds), ("logits", logits)):
        ours = zoo.create("metric:segmentation", num_classes=C, ignore_index=255).to(dev)
        peers = {flag: MulticlassJaccardIndex(C, ignore_index=255, average="macro",
                                              validate_args=flag).to(dev)
                 for flag in (False, True)}

        def check(p=p, ours=ours, peer=peers[False]) -> None:  # same answer, or timing is moot
            ours.update(p, target)
            peer.update(p, target)
            assert abs(ours.compute()["mean_iou"] - float(peer.compute())) < 1e-6
            ours.reset()
            peer.reset()

        what = f"segmentation update, all five metrics, {N}x{H}x{W} {name}, {C} classes"
        for flag, peer in peers.items():
            label = "validate_args=False, its fastest" if not flag else \
                "validate_args=True, its default"
            row = bench.compare(
                what if not flag else f"{what}, peer at its default",
                peer=(f"torchmetrics MulticlassJaccardIndex ({label})",
                      lambda p=p, peer=peer: peer.update(p, target)),
                ours=lambda p=p, ours=ours: ours.update(p, target), unit="Mpix/s", work=mpix,
                repeats=args.repeats, goal=(8.0 if name == "labels" else 5.0) if not flag
                else None, check=check if not flag else None,
                sync=sync if dev == "cuda" else None)
            if not flag:
                fastest = row
        gbytes = (p.numel() * p.element_size() + target.numel() * target.element_size()) / 1e9
        t_bound, t_ours = gbytes / read_gb_s, mpix / fastest["ours"]
        print(f"    inputs {gbytes * 1e3:.0f} MB: read once in {t_bound * 1e3:.1f} ms at "
              f"{read_gb_s:.1f} GB/s; our update {t_ours * 1e3:.1f} ms = "
              f"{t_bound / t_ours:.0%} of the memory-bandwidth bound", flush=True)
        bench.record(f"segmentation update {name}: fraction of the bandwidth bound",
                     peer=("reading the inputs once", t_bound), ours=t_ours, unit="s",
                     higher_is_better=False, read_gb_per_s=round(read_gb_s, 2), baseline=True)
    bench.finish()


if __name__ == "__main__":
    main()
