"""DeepLabv3-ResNet50 forward throughput on CPU, zoo vs torchvision, and the time to compute
the exact receptive field of a ResNet-101.

Both models hold the same weights (torchvision's random init loaded into ours through the
``torchvision`` layout), run in eval mode under ``torch.inference_mode`` at 1×3×512×512, and
are timed interleaved by ``_harness.Bench`` after their logits are checked equal. A second
figure folds batch norm into the convolutions on both sides: ours with
``model.fuse_batchnorm()``, torchvision's with ``torch.fx.experimental.optimization.fuse``
(the same folding). The receptive-field timings have no peer and are printed apart.

    python benchmarks/deeplab_cpu.py [--size 512] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision
from torch.fx.experimental.optimization import fuse
from zoo_dilated.rf import receptive_field

import zoo_core as zoo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench  # noqa: E402


def _logits(out: dict[str, torch.Tensor]) -> torch.Tensor:
    return out["logits"] if "logits" in out else out["out"]


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
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    bench = Bench("deeplab_cpu", threads=args.threads)
    torch.manual_seed(0)
    ref = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, aux_loss=False).eval()
    ours = zoo.create("model:deeplabv3", preset="resnet50").eval()
    zoo.load_state_dict(ours, dict(ref.state_dict()), "torchvision")
    x = torch.randn(1, 3, args.size, args.size)
    pairs = {"": (ref, ours),
             ", BN folded": (_fx_fuse(ref), copy.deepcopy(ours).fuse_batchnorm())}
    for suffix, (peer, mine) in pairs.items():

        def run(model: torch.nn.Module) -> torch.Tensor:
            with torch.inference_mode():
                return _logits(model(x))

        def check(peer: torch.nn.Module = peer, mine: torch.nn.Module = mine) -> None:
            torch.testing.assert_close(run(mine), run(peer), rtol=1e-3, atol=1e-3)

        bench.compare(f"DeepLabv3-ResNet50 forward 1x3x{args.size}^2{suffix}",
                      peer=("torchvision", lambda p=peer: run(p)),
                      ours=lambda m=mine: run(m), unit="img/s", repeats=args.repeats,
                      check=check)

    print("\nExact receptive field (torch.fx trace + interval walk), median of 5")
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
    bench.finish()


if __name__ == "__main__":
    main()
