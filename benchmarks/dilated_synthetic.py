"""DeepLabv3-small trained on the synthetic shapes set (zoo_dilated.data) on CPU:
dilated (output stride 8) vs strided (output stride 32, widened to the same MACs) backbones,
and the last stage's rates: an HDC sawtooth (1, 2, 5) vs multi-grid (2, 4, 8) vs the default
(2, 4, 4). Evaluated with ``metric:segmentation`` on held-out images; mIoU as observed.
Each dilated variant's mIoU is recorded through ``_harness.Bench`` against the strided
baseline's from the same run (ratio = dilated / strided; no goal: an observation).

    python benchmarks/dilated_synthetic.py [--steps 1000] [--seeds 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from torch.utils.data import TensorDataset
from zoo_dilated.data import SyntheticShapes
from zoo_dilated.train import count_macs, evaluate, train

import zoo_core as zoo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench  # noqa: E402

BASE = {"backbone": "resnet34", "width": 8, "aspp_channels": 32, "num_classes": 6,
        "aspp_dropout": 0.1}
SIZE = 64


def variants() -> dict[str, dict[str, object]]:
    dilated = {**BASE, "output_stride": 8, "aspp_rates": (1, 2, 3)}
    macs = count_macs(zoo.create("model:deeplabv3", **dilated), SIZE)
    # the strided baseline: output stride 32, widened until its MACs match the dilated one's
    width = min(range(8, 64, 2), key=lambda w: abs(count_macs(zoo.create(
        "model:deeplabv3", **{**BASE, "output_stride": 32, "aspp_rates": (1, 1, 1),
                              "width": w}), SIZE) - macs))
    return {
        "dilated OS8, last stage (2, 4, 4)": dilated,
        f"strided OS32, width {width}": {**BASE, "output_stride": 32, "aspp_rates": (1, 1, 1),
                                         "width": width},
        "dilated OS8, HDC (1, 2, 5)": {**dilated, "block_rates": (1, 2, 5)},
        "dilated OS8, multi-grid (2, 4, 8)": {**dilated, "block_rates": (2, 4, 8)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1, help="1 suits a shared machine")
    args = parser.parse_args()
    bench = Bench("dilated_synthetic", threads=args.threads)
    train_set = TensorDataset(*SyntheticShapes(args.train_size, SIZE, seed=0).tensors())
    test_set = TensorDataset(*SyntheticShapes(200, SIZE, seed=12345).tensors())
    rows = []
    for name, cfg in variants().items():
        ious, accs, secs = [], [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = zoo.create("model:deeplabv3", **cfg)
            result = train(model, train_set, args.steps, args.batch_size, seed=seed)
            scores = evaluate(model, test_set, num_classes=6)
            ious.append(scores["mean_iou"])
            accs.append(scores["pixel_accuracy"])
            secs.append(result.seconds)
            print(f"  {name} seed {seed}: mIoU {scores['mean_iou']:.4f} "
                  f"loss {result.final_loss:.3f} {result.seconds:.0f}s", flush=True)
        macs = count_macs(zoo.create("model:deeplabv3", **cfg), SIZE)
        rows.append((name, macs, statistics.mean(ious), statistics.mean(accs),
                     statistics.mean(secs)))
    print(f"\nDeepLabv3-small ({BASE['backbone']}), {args.steps} steps × {args.batch_size} "
          f"images {SIZE}×{SIZE}, {args.seeds} seed(s), {args.threads} thread(s)")
    print("| variant | MMACs / image | mIoU | pixel acc. | train s |")
    print("|---|---|---|---|---|")
    for name, macs, iou, acc, sec in rows:
        print(f"| {name} | {macs / 1e6:.1f} | {iou:.4f} | {acc:.4f} | {sec:.0f} |")
    strided = next(r for r in rows if r[0].startswith("strided"))
    for name, _, iou, _, _ in rows:
        if name != strided[0]:
            bench.record(f"DeepLabv3-small synthetic mIoU, {name}", peer=(strided[0], strided[2]),
                         ours=iou, unit="mIoU", steps=args.steps, seeds=args.seeds)
    bench.finish()


if __name__ == "__main__":
    main()
