"""A tiny GPT-2 trained from scratch on gensim's Lee corpus (offline, inside gensim's wheel),
tokenized by the ``gpt2`` entry: its held-out next-token loss falls from ``ln V`` (uniform)
to below the unigram entropy of the corpus, so it has learnt more than token frequencies."""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path

import pytest
import torch

import zoo_core as zoo

log = logging.getLogger(__name__)


def lee_tokens() -> list[int]:
    import gensim

    path = Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
    tok = zoo.load("gpt2")
    eot = tok.special_tokens["<|endoftext|>"]
    ids: list[int] = []
    for line in path.read_text("utf-8", errors="replace").splitlines():
        if line.strip():
            ids += [*tok.encode(line.strip()), eot]
    return ids


def unigram_entropy(ids: list[int]) -> float:
    """``H = -Σ p log p`` (nats) of the token frequencies: the loss of a model without context."""
    counts = Counter(ids)
    n = len(ids)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def train(steps: int = 400, seq: int = 64, batch: int = 16, seed: int = 0
          ) -> tuple[list[float], float, float]:
    """Train; return the training losses, the held-out loss and the held-out unigram entropy."""
    torch.manual_seed(seed)
    ids = torch.tensor(lee_tokens())
    split = int(0.9 * len(ids))
    train_ids, held = ids[:split], ids[split:]
    model = zoo.create("model:gpt2", vocab_size=50257, max_positions=seq, hidden_size=128,
                       num_layers=2, num_heads=4, intermediate_size=512, dropout=0.0,
                       embed_dropout=0.0, attention_dropout=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps, pct_start=0.1)
    losses = []
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        starts = torch.randint(0, len(train_ids) - seq, (batch,), generator=g)
        x = torch.stack([train_ids[s:s + seq] for s in starts.tolist()])  # (B, S)
        loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 50 == 0:
            log.info("step %d loss %.3f", step, losses[-1])
    model.eval()
    chunks = held[: len(held) // seq * seq].view(-1, seq)
    with torch.no_grad():
        held_loss = model(chunks, labels=chunks).loss.item()
    return losses, held_loss, unigram_entropy(held.tolist())


@pytest.mark.slow
def test_tiny_gpt2_learns_the_lee_corpus():
    losses, held, unigram = train()
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    log.info("train loss %.3f -> %.3f; held-out %.3f; unigram entropy %.3f; ln V %.3f",
             first, last, held, unigram, math.log(50257))
    assert first > math.log(50257) - 0.5  # starts near uniform
    assert held < unigram - 0.3, (held, unigram)
    assert last < first - 4.0
