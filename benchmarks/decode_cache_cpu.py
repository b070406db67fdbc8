"""Decoded tokens per second with and without the key/value cache, and GPT-2 against
transformers, in the same run.

* ``model:transformer`` (d_model 256, 4 + 4 layers, 4 heads, vocabulary 1000), a batch of 8
  sources of 32 tokens, 128 new tokens, greedy (``--beams 1,4`` adds beam search, k = 4):
  ``generate`` with the cache against ``generate(use_cache=False)``, which re-runs the
  decoder on the whole prefix at every step. The ids are checked equal before timing. EOS
  is made unreachable (its output row is zero, so its logit is 0 while the largest of the
  others is positive) so both decode all 128 steps.
* ``model:gpt2`` (hidden 256, 4 layers) against ``transformers``' ``GPT2LMHeadModel`` holding
  the same weights (SDPA attention, its own cache), greedy, 128 new tokens after a 32-token
  prompt, batch 8; the ids are checked equal before timing.

    python benchmarks/decode_cache_cpu.py [--repeats 3] [--threads 2] [--new-tokens 128]
        [--beams 1,4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from _harness import Bench  # noqa: E402

import zoo_core as zoo  # noqa: E402


def transformer_rows(bench: Bench, new: int, batch: int, repeats: int,
                     beams: list[int]) -> None:
    torch.manual_seed(0)
    model = zoo.create("model:transformer", src_vocab_size=1000, tgt_vocab_size=1000,
                       d_model=256, num_heads=4, num_encoder_layers=4, num_decoder_layers=4,
                       ffn_dim=1024, max_len=new + 8, dropout=0.0, tie_output=False).eval()
    with torch.no_grad():
        model.out.weight[model.config.eos_id] = 0.0
    src = torch.randint(3, 1000, (batch, 32), generator=torch.Generator().manual_seed(1))
    for beam in beams:
        def cached(beam: int = beam) -> torch.Tensor:
            return model.generate(src, max_new_tokens=new, beam_size=beam)

        def uncached(beam: int = beam) -> torch.Tensor:
            return model.generate(src, max_new_tokens=new, beam_size=beam, use_cache=False)

        def check(cached=cached, uncached=uncached) -> None:
            a, b = cached(), uncached()
            assert a.shape == (batch, new + 1) and torch.equal(a, b), "ids differ"

        what = "greedy" if beam == 1 else f"beam search k={beam}"
        with torch.inference_mode():
            bench.compare(f"Transformer {what} decode, {new} new tokens, batch {batch}: "
                          "KV cache", peer=("zoo without the cache", uncached), ours=cached,
                          unit="tok/s", work=batch * new, repeats=repeats, check=check,
                          goal=3.0 if beam == 1 else None)


def gpt2_row(bench: Bench, new: int, batch: int, repeats: int) -> None:
    import transformers as tf

    torch.manual_seed(0)
    config = tf.GPT2Config(vocab_size=5000, n_positions=new + 64, n_embd=256, n_layer=4,
                           n_head=4, bos_token_id=4999, eos_token_id=4999,
                           attn_implementation="sdpa")
    peer = tf.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # EOS unreachable: every row decodes all the new tokens
        peer.transformer.wte.weight[config.eos_token_id] = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        peer.save_pretrained(tmp)
        ours = zoo.load(f"dir:{tmp}")
    ids = torch.randint(0, 4999, (batch, 32), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)

    def theirs() -> torch.Tensor:
        return peer.generate(ids, attention_mask=mask, max_new_tokens=new, do_sample=False,
                             pad_token_id=config.eos_token_id)

    def mine() -> torch.Tensor:
        return ours.generate(ids, max_new_tokens=new)

    def check() -> None:
        a, b = mine(), theirs()
        assert a.shape == (batch, 32 + new) and torch.equal(a, b), "ids differ"

    with torch.inference_mode():
        bench.compare(f"GPT-2 (4x256) greedy decode, {new} new tokens, batch {batch}",
                      peer=("transformers generate (sdpa, cache)", theirs), ours=mine,
                      unit="tok/s", work=batch * new, repeats=repeats, check=check)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--cases", default="transformer,gpt2")
    ap.add_argument("--beams", default="1", help="beam sizes of the Transformer rows, e.g. 1,4")
    args = ap.parse_args()
    bench = Bench("decode_cache_cpu", threads=args.threads)
    cases = args.cases.split(",")
    if "transformer" in cases:
        transformer_rows(bench, args.new_tokens, args.batch, args.repeats,
                         [int(b) for b in args.beams.split(",")])
    if "gpt2" in cases:
        gpt2_row(bench, args.new_tokens, args.batch, args.repeats)
    bench.finish()


if __name__ == "__main__":
    main()
