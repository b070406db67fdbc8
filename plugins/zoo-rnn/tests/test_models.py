"""rnn-lm and seq2seq: parity with torch.nn compositions, truncated BPTT, sampling, attention
against its formula, and beam search against exhaustive search."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from zoo_rnn.layers import AdditiveAttention
from zoo_rnn.lm import RNNLM, batchify, detach_state, perplexity, train_epoch, windows
from zoo_rnn.seq2seq import Seq2Seq

import zoo_core as zoo


def _lm(**kw) -> RNNLM:
    torch.manual_seed(0)
    return zoo.create("model:rnn-lm", preset="tiny", dropout=0.0, **kw).eval()


def test_lm_matches_torch_composition():
    lm = _lm()
    c = lm.config
    ref = nn.LSTM(c.embed_size, c.hidden_size, num_layers=2, batch_first=True)
    with torch.no_grad():
        for i, layer in enumerate(lm.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{name}_l{i}").copy_(getattr(layer[0], name))
    ids = torch.randint(0, c.vocab_size, (3, 9))
    labels = torch.randint(0, c.vocab_size, (3, 9))
    out = lm(ids, labels=labels)
    hidden, _ = ref(F.embedding(ids, lm.embed.weight))
    logits = F.linear(hidden @ lm.proj.weight.T, lm.embed.weight, lm.head.bias)
    torch.testing.assert_close(out.logits, logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.loss, F.cross_entropy(logits.reshape(-1, c.vocab_size),
                                                         labels.reshape(-1)))
    assert lm.head.weight is lm.embed.weight                    # tied


def test_carried_state_equals_one_long_pass():
    lm = _lm(cell="gru")
    ids = torch.randint(0, 32, (2, 10))
    whole = lm(ids).logits
    first = lm(ids[:, :6])
    second = lm(ids[:, 6:], detach_state(first.state))
    torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), whole,
                               rtol=1e-5, atol=1e-6)


def test_batchify_windows_and_training_step():
    data = batchify(torch.arange(103), 4)                       # (4, 25), tail dropped
    assert data.shape == (4, 25) and data[1, 0] == 25
    pairs = list(windows(data, 10))
    assert [x.shape[1] for x, _ in pairs] == [10, 10, 4]
    assert all(torch.equal(y, x + 1) for x, y in pairs)
    lm = zoo.create("model:rnn-lm", preset="tiny")
    text = torch.randint(0, 32, (400,))
    opt = torch.optim.Adam(lm.parameters(), lr=1e-2)
    streams = batchify(text, 4)
    before = perplexity(lm, streams, bptt=16)
    for _ in range(3):
        train_epoch(lm, streams, opt, bptt=16, clip=0.5)
    assert perplexity(lm, streams, bptt=16) < before


def test_sampling():
    lm = _lm()
    prompt = torch.randint(0, 32, (2, 3))
    greedy = lm.generate(prompt, 5, temperature=0)
    top1 = lm.generate(prompt, 5, temperature=0.7, top_k=1)
    assert torch.equal(greedy, top1) and torch.equal(greedy[:, :3], prompt)
    ids = prompt                                               # greedy by hand
    for _ in range(5):
        ids = torch.cat([ids, lm(ids).logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(greedy, ids)
    gen = torch.Generator().manual_seed(0)
    sampled = lm.generate(prompt[:1], 1, temperature=1.0, top_k=3, generator=gen)
    allowed = lm(prompt[:1]).logits[0, -1].topk(3).indices
    assert sampled[0, -1] in allowed
    with pytest.raises(zoo.ZooError, match="top_k must be in"):
        lm.generate(prompt, 1, top_k=0)


def test_additive_attention_formula():
    torch.manual_seed(0)
    attn = AdditiveAttention(4, 6, 5)
    q, mem = torch.randn(2, 4), torch.randn(2, 3, 6)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    ctx, alpha = attn(q, attn.keys(mem), mem, mask)
    w_a, u_a, b_a, v_a = attn.query.weight, attn.key.weight, attn.key.bias, attn.score.weight[0]
    for b in range(2):
        e = torch.stack([v_a @ torch.tanh(w_a @ q[b] + u_a @ mem[b, j] + b_a) for j in range(3)])
        e = torch.where(mask[b], e, torch.tensor(-math.inf))
        a = torch.exp(e - e.max()) / torch.exp(e - e.max()).sum()
        torch.testing.assert_close(alpha[b], a)
        torch.testing.assert_close(ctx[b], (a[:, None] * mem[b]).sum(0))


def _s2s() -> Seq2Seq:
    torch.manual_seed(0)
    model = zoo.create("model:seq2seq", preset="tiny", tgt_vocab_size=5).eval()
    for p in model.parameters():                               # peaky distributions
        nn.init.normal_(p, std=0.8)
    return model


def _logprob(model, src, lengths, seq) -> float:
    """log p(seq | src) by teacher forcing: an independent use of the forward pass."""
    dec_in = torch.tensor([[model.config.bos_id, *seq[:-1]]])
    logp = model(src, lengths, dec_in).logits.log_softmax(-1)[0]
    return float(sum(logp[t, tok] for t, tok in enumerate(seq)).detach())


def test_beam_search_finds_the_exhaustive_optimum():
    model = _s2s()
    src, lengths = torch.randint(3, 16, (1, 4)), torch.tensor([4])
    eos, max_len = model.config.eos_id, 3
    candidates = []
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(5), repeat=n):
            if eos not in seq[:-1] and (seq[-1] == eos or n == max_len):
                candidates.append(list(seq))
    best = max(candidates, key=lambda s: _logprob(model, src, lengths, s))
    found = model.generate(src, lengths, max_length=max_len, num_beams=len(candidates),
                           length_penalty=0.0)[0].tolist()
    assert found[:len(best)] == best


def test_greedy_is_beam_of_one_and_matches_forward():
    model = _s2s()
    src, lengths = torch.randint(3, 16, (3, 6)), torch.tensor([6, 2, 4])
    greedy = model.generate(src, lengths, max_length=6)
    for b in range(3):
        beam = model.generate(src[b:b + 1], lengths[b:b + 1], max_length=6, num_beams=1)
        assert beam[0].tolist() == greedy[b, :beam.shape[1]].tolist()
        seq = [t for t in greedy[b].tolist()]
        seq = seq[:seq.index(2) + 1] if 2 in seq else seq
        dec_in = torch.tensor([[1, *seq[:-1]]])
        logits = model(src[b:b + 1], lengths[b:b + 1], dec_in).logits[0]
        assert logits.argmax(-1).tolist() == seq


def test_source_padding_is_invisible():
    model = _s2s()
    src, lengths = torch.randint(3, 16, (2, 4)), torch.tensor([4, 2])
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], 1)
    dec = torch.tensor([[1, 3, 4], [1, 4, 3]])
    a = model(src, lengths, dec)
    b = model(padded, lengths, dec)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-5, atol=1e-6)
    assert torch.all(b.attention[1, :, 2:] == 0)


@pytest.mark.parametrize("name, overrides", [
    ("model:lstm", {"fused": True}), ("model:lstm", {"fused": False}),
    ("model:gru", {"fused": True}), ("model:rnn", {"fused": False}),
    ("model:seq2seq", {}), ("model:rnn-lm", {})])
def test_forward_never_reads_a_device_value(name, overrides):
    """On the meta device a tensor has no values: any ``.item()``, ``bool(t)`` or ``.tolist()``
    in the forward pass (a host sync on a GPU) would raise here."""
    with torch.device("meta"):
        model = zoo.create(name, preset="tiny", **overrides)
    inputs = {k: v.to("meta") if isinstance(v, torch.Tensor) else v
              for k, v in model.example_inputs().items()}
    out = model(**inputs)
    first = out[0] if isinstance(out, tuple) else next(iter(vars(out).values()))
    assert first.device.type == "meta"
