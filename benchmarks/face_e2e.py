"""End to end on synthetic identities: softmax against CosFace and ArcFace, same run.

    .venv/bin/python benchmarks/face_e2e.py [--steps 1200] [--device cuda]

Trains the same small IResNet (same seed, same batches) with each loss on the first
``--train-ids`` synthetic identities, then reports LFW-style 10-fold accuracy and TAR@FAR on
pairs of ``--test-ids`` identities never seen in training (zoo_face.e2e).
"""

from __future__ import annotations

import argparse
import json

import torch
from zoo_face.e2e import train_and_verify

LOSSES = {
    "softmax": {},
    "cosface": {"s": 32.0, "m": 0.35},
    "arcface": {"s": 32.0, "m": 0.5},
}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--losses", nargs="+", default=list(LOSSES))
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--train-ids", type=int, default=2000)
    ap.add_argument("--test-ids", type=int, default=500)
    ap.add_argument("--pairs", type=int, default=6000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--strength", type=float, default=1.0, help="augmentation strength")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    results = []
    for name in args.losses:
        r = train_and_verify(name, steps=args.steps, batch_size=args.batch,
                             train_ids=args.train_ids, test_ids=args.test_ids,
                             num_pairs=args.pairs, loss_options=LOSSES.get(name, {}),
                             device=args.device, log_every=max(args.steps // 4, 1),
                             strength=args.strength)
        results.append({k: v for k, v in r.items() if not isinstance(v, torch.Tensor)})
        print(json.dumps(results[-1]), flush=True)
    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"\n{dev}; {args.steps} steps x batch {args.batch}; {args.train_ids} training "
          f"identities; {args.pairs} pairs of {args.test_ids} unseen identities; augmentation "
          f"strength {args.strength}\n")
    print("| loss | 10-fold acc | ± std | AUC | TAR@FAR=1e-1 | 1e-2 | 1e-3 | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['loss']} {LOSSES.get(r['loss'], '')} | {r['accuracy']:.4f} | "
              f"{r['accuracy_std']:.4f} | {r['auc']:.4f} | {r['tar@far=0.1']:.4f} | "
              f"{r['tar@far=0.01']:.4f} | {r['tar@far=0.001']:.4f} | {r['train_seconds']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
