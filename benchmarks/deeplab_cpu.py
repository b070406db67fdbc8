"""DeepLabv3-ResNet50 forward throughput on CPU, zoo vs torchvision, and the time to compute
the exact receptive field of a ResNet-101.

Both models hold the same weights (torchvision's random init loaded into ours through the
``torchvision`` layout), run in eval mode under ``torch.inference_mode`` at 1×3×512×512, and
are timed alternately in the same process; the table gives the median of the repeats. Two
more rows fold batch norm into the convolutions: ours with ``model.fuse_batchnorm()``,
torchvision's with ``torch.fx.experimental.optimization.fuse`` (the same folding).

    python benchmarks/deeplab_cpu.py [--size 512] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torchvision
from torch.fx.experimental.optimization import fuse
from zoo_dilated.rf import receptive_field

import zoo_core as zoo
from zoo_core._weights import load_state_dict


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _logits(out: object) -> torch.Tensor:
    return out["logits"] if "logits" in out else out["out"]  # type: ignore[index,operator]


def _fx_fuse(model: torch.nn.Module) -> torch.nn.Module:
    """torchvision's model with BN folded by torch.fx (its backbone and head are traceable)."""
    fused = copy.deepcopy(model)
    fused.backbone = fuse(fused.backbone)
    fused.classifier = fuse(fused.classifier)
    return fused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ref = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, aux_loss=False).eval()
    ours = zoo.create("model:deeplabv3", preset="resnet50").eval()
    load_state_dict(ours, dict(ref.state_dict()), "torchvision")
    models = {"torchvision": ref, "zoo": ours,
              "torchvision, BN folded (fx fuse)": _fx_fuse(ref),
              "zoo, BN folded (fuse_batchnorm)": copy.deepcopy(ours).fuse_batchnorm()}
    x = torch.randn(1, 3, args.size, args.size)
    with torch.inference_mode():
        want = ref(x)["out"]
        diff = {k: float((_logits(m(x)) - want).abs().max()) for k, m in models.items()}
        times: dict[str, list[float]] = {k: [] for k in models}
        for _ in range(args.repeats):
            for name, model in models.items():
                times[name].append(timed(model, x))
    med = {k: statistics.median(v) for k, v in times.items()}

    print(f"DeepLabv3-ResNet50 forward, 1×3×{args.size}×{args.size}, CPU, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print("| model | s / image | images / s | speed vs torchvision | max abs Δlogits |")
    print("|---|---|---|---|---|")
    for name in models:
        print(f"| {name} | {med[name]:.3f} | {1 / med[name]:.3f} | "
              f"{med['torchvision'] / med[name]:.3f}× | {diff[name]:.1e} |")

    print()
    print("Exact receptive field (torch.fx trace + interval walk), median of 5")
    print("| network | receptive field | jump | seconds |")
    print("|---|---|---|---|")
    for preset in ("resnet101", "resnet101-os8"):
        net = zoo.create("model:dilated-resnet", preset=preset, num_classes=0)
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            rf = receptive_field(net)
            runs.append(time.perf_counter() - start)
        print(f"| {preset} | {rf.size[0]}×{rf.size[1]} | {rf.jump[0]} | "
              f"{statistics.median(runs):.3f} |")


if __name__ == "__main__":
    main()
