"""Short CPU trainings (``pytest -m slow``): masked-LM loss on gensim's Lee corpus falls well
below its start; the Transformer learns to reverse digit sequences (≥ 99% exact match on
held-out sequences)."""

from __future__ import annotations

import math

import pytest
import torch
from zoo_transformer.pretrain import (
    MLMBatches,
    TrainConfig,
    lee_documents,
    linear_schedule,
    pretrain,
)

import zoo_core as zoo

pytestmark = pytest.mark.slow


@pytest.mark.timeout(3600)
def test_mlm_on_lee_corpus_loss_falls():
    torch.manual_seed(0)
    tok = zoo.load("bert-base-uncased")
    cfg = TrainConfig(steps=300, batch_size=16, lr=2e-3, warmup=30, max_length=64, nsp=True)
    model = zoo.create("model:bert-pretraining", preset="tiny", vocab_size=tok.vocab_size,
                       hidden_size=64, num_heads=4, intermediate_size=256,
                       max_position_embeddings=64)
    history = pretrain(model, MLMBatches(tok, lee_documents(), cfg, tok.vocab_size), cfg,
                       show_progress=False)
    start, end = sum(history[:10]) / 10, sum(history[-10:]) / 10
    print(f"MLM+NSP loss: first 10 steps {start:.3f}, last 10 steps {end:.3f} "
          f"(uniform over the vocabulary: {math.log(tok.vocab_size) + math.log(2):.3f})")
    assert start - end > 3.0  # perplexity divided by more than e³ ≈ 20


def _digits(n: int, g: torch.Generator, lo: int = 4, hi: int = 10) -> list[list[int]]:
    lengths = torch.randint(lo, hi + 1, (n,), generator=g).tolist()
    return [torch.randint(3, 13, (length,), generator=g).tolist() for length in lengths]


def _batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    src = torch.zeros(len(seqs), width, dtype=torch.long)
    tgt = torch.zeros(len(seqs), width + 1, dtype=torch.long)
    labels = torch.zeros(len(seqs), width + 1, dtype=torch.long)
    for i, s in enumerate(seqs):
        rev = s[::-1]
        src[i, : len(s)] = torch.tensor(s)
        tgt[i, : len(s) + 1] = torch.tensor([1, *rev])
        labels[i, : len(s) + 1] = torch.tensor([*rev, 2])
    return src, tgt, labels


@pytest.mark.timeout(3600)
def test_transformer_learns_digit_reversal():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    held_out = _digits(500, g)
    seen = {tuple(s) for s in held_out}
    model = zoo.create("model:transformer", preset="tiny", src_vocab_size=13, tgt_vocab_size=13,
                       d_model=64, ffn_dim=128, dropout=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    steps = 2000
    sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_schedule(100, steps))
    model.train()
    for step in range(steps):
        seqs = [s for s in _digits(96, g) if tuple(s) not in seen][:64]
        src, tgt, labels = _batch(seqs)
        loss = model(src, tgt, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if (step + 1) % 250 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f}")
    model.eval()
    src, _, labels = _batch(held_out)
    greedy = model.generate(src, max_new_tokens=12)
    beam = model.generate(src, max_new_tokens=12, beam_size=4)
    for name, out in (("greedy", greedy), ("beam 4", beam)):
        hits = sum(out[i, 1: len(s) + 2].tolist() == [*s[::-1], 2]
                   for i, s in enumerate(held_out))
        print(f"digit reversal, {name}: {hits}/{len(held_out)} exact")
        assert hits / len(held_out) >= 0.99
