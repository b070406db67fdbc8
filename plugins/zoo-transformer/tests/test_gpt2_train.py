"""A tiny GPT-2 trained from scratch on gensim's Lee corpus (offline, inside gensim's wheel),
tokenized by the ``gpt2`` entry: its next-token loss falls from ``ln V`` (uniform), and on the
held-out tenth of the corpus it beats the unigram model of the training tokens, so it has
learnt more than token frequencies.

The model's vocabulary is the GPT-2 ids that occur in the corpus (renumbered densely): the
same tokens, a softmax over about 9k ids instead of 50k, so it trains in minutes on a CPU."""

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


def unigram_cross_entropy(train: list[int], held: list[int], vocab: int) -> float:
    """Held-out loss (nats per token) of the model without context: the add-one smoothed
    unigram frequencies of the training tokens."""
    counts, n = Counter(train), len(train)
    return -sum(math.log((counts[i] + 1) / (n + vocab)) for i in held) / len(held)


def train(steps: int = 300, seq: int = 64, batch: int = 16, seed: int = 0
          ) -> tuple[list[float], float, float, int]:
    """Train; return the training losses, the held-out loss, the held-out loss of the unigram
    model and the vocabulary size."""
    torch.manual_seed(seed)
    _, ids = torch.tensor(lee_tokens()).unique(return_inverse=True)  # dense ids
    vocab = int(ids.max()) + 1
    split = int(0.9 * len(ids))
    train_ids, held = ids[:split], ids[split:]
    model = zoo.create("model:gpt2", vocab_size=vocab, max_positions=seq, hidden_size=64,
                       num_layers=2, num_heads=4, intermediate_size=256, dropout=0.0,
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
    return losses, held_loss, unigram_cross_entropy(train_ids.tolist(), held.tolist(),
                                                    vocab), vocab


@pytest.fixture
def one_thread():
    """One torch thread: on a shared, loaded machine two threads spin-wait on each other
    (measured 10-20x slower per step on the 2-core machine at load 12)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_tiny_gpt2_learns_the_lee_corpus(one_thread):
    losses, held, unigram, vocab = train()
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    log.info("vocab %d: train loss %.3f -> %.3f; held-out %.3f; unigram model %.3f; ln V "
             "%.3f", vocab, first, last, held, unigram, math.log(vocab))
    assert first > math.log(vocab) - 0.5  # starts near uniform
    assert last < first - 2.0
    assert held < unigram, (held, unigram)  # context helps on unseen text
