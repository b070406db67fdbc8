"""GPU check of transform:checkpoint: gradients of every policy vs no checkpointing on CUDA.

A BERT-base-shaped encoder (zoo ``model:bert``, 4 layers, dropout on) at batch 2 x 128,
fp32 and under bf16 autocast; prints the largest gradient difference per policy and the
peak CUDA memory of one training step.

    python benchmarks/checkpoint_gpu_check.py
"""

from __future__ import annotations

import copy

import torch

import zoo_core as zoo

POLICIES = [("every", {}), ("every-k", {}), ("sqrt", {}), ("selective", {}),
            ("budget", {"fraction": 0.3})]


def step(model: torch.nn.Module, inputs: dict, autocast: bool) -> tuple[dict, int]:
    model.zero_grad(set_to_none=True)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    torch.manual_seed(1)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        out = model(**inputs)
    out.last_hidden_state.float().pow(2).mean().backward()
    peak = torch.cuda.max_memory_allocated() - base
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, peak


def main() -> None:
    torch.manual_seed(0)
    model = zoo.create("model:bert", preset="base", num_layers=4).cuda().train()
    ids = torch.randint(1, 30522, (2, 128), device="cuda")
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    print("| policy | autocast | max abs grad diff | peak step memory (MiB) |")
    print("|---|---|---:|---:|")
    for autocast in (False, True):
        want, peak = step(model, inputs, autocast)
        print(f"| none | {autocast} | 0 | {peak / 2**20:.0f} |")
        for policy, options in POLICIES:
            twin = copy.deepcopy(model).set_grad_checkpointing(policy, inputs=inputs, **options)
            got, peak = step(twin, inputs, autocast)
            diff = max(float((got[n] - want[n]).abs().max()) for n in want)
            assert got.keys() == want.keys()
            print(f"| {policy} | {autocast} | {diff:.2e} | {peak / 2**20:.0f} |")


if __name__ == "__main__":
    main()
