"""The Transformer encoder-decoder against torch.nn.Transformer, the paper's formulas and
an exhaustive search."""

from __future__ import annotations

import itertools

import pytest
import torch
from zoo_transformer.search import beam_search, greedy, length_penalty

import zoo_core as zoo


def _tiny(**kw):
    torch.manual_seed(0)
    return zoo.create("model:transformer", preset="tiny", dropout=0.0, **kw).eval()


def test_pre_norm_matches_torch_nn_transformer():
    ours = _tiny(norm_first=True)
    c = ours.config
    peer = torch.nn.Transformer(c.d_model, c.num_heads, c.num_encoder_layers,
                                c.num_decoder_layers, c.ffn_dim, dropout=0.0, batch_first=True,
                                norm_first=True, layer_norm_eps=c.layer_norm_eps).eval()

    def attn(dst, src):
        dst.in_proj_weight.copy_(src.qkv.weight)  # the same (3·d, d) layout: W_Q; W_K; W_V
        dst.in_proj_bias.copy_(src.qkv.bias)
        dst.out_proj.weight.copy_(src.o.weight)
        dst.out_proj.bias.copy_(src.o.bias)

    def lin(dst, src):
        dst.load_state_dict(src.state_dict())

    with torch.no_grad():
        for d, s in zip(peer.encoder.layers, ours.encoder, strict=True):
            attn(d.self_attn, s.attn)
            lin(d.linear1, s.ffn.fc1), lin(d.linear2, s.ffn.fc2)
            lin(d.norm1, s.attn_block.norm), lin(d.norm2, s.ffn_block.norm)
        for d, s in zip(peer.decoder.layers, ours.decoder, strict=True):
            attn(d.self_attn, s.self_attn), attn(d.multihead_attn, s.cross_attn)
            lin(d.linear1, s.ffn.fc1), lin(d.linear2, s.ffn.fc2)
            lin(d.norm1, s.self_block.norm), lin(d.norm2, s.cross_block.norm)
            lin(d.norm3, s.ffn_block.norm)
        lin(peer.encoder.norm, ours.enc_norm), lin(peer.decoder.norm, ours.dec_norm)
    inputs = ours.example_inputs()
    src, tgt = inputs["src_ids"], inputs["tgt_ids"]
    with torch.no_grad():
        want = peer(ours._embed(ours.src_embed, src), ours._embed(ours.tgt_embed, tgt),
                    tgt_mask=peer.generate_square_subsequent_mask(tgt.shape[1]),
                    src_key_padding_mask=src.eq(0), tgt_key_padding_mask=tgt.eq(0),
                    memory_key_padding_mask=src.eq(0), tgt_is_causal=True)
        want = ours.out(want)
        got = ours(**inputs).logits
    keep = tgt.ne(0)
    torch.testing.assert_close(got[keep], want[keep], rtol=1e-5, atol=1e-5)


def test_label_smoothed_loss_formula():
    model = _tiny()
    inputs = model.example_inputs()
    labels = inputs["tgt_ids"].roll(-1, 1)
    labels[1, 3:] = 0  # padding is ignored
    out = model(**inputs, labels=labels)
    eps, v = model.config.label_smoothing, model.config.tgt_vocab_size
    logp = out.logits.log_softmax(-1)
    keep = labels.ne(0)
    nll = -logp.gather(-1, labels[..., None]).squeeze(-1)[keep]
    uniform = -logp.sum(-1)[keep] / v  # Section 5.4: mass ε spread uniformly over the vocab
    want = ((1 - eps) * nll + eps * uniform).mean()
    torch.testing.assert_close(out.loss, want, rtol=1e-6, atol=1e-6)


def test_decoder_is_causal_and_source_padding_is_ignored():
    model = _tiny()
    src = torch.tensor([[5, 6, 7, 8]])
    tgt = torch.tensor([[1, 9, 10, 11]])
    with torch.no_grad():
        base = model(src, tgt).logits
        future = model(src, torch.tensor([[1, 9, 12, 13]])).logits
        padded = model(torch.tensor([[5, 6, 7, 8, 0, 0]]), tgt).logits
    torch.testing.assert_close(future[:, :2], base[:, :2], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(padded, base, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_positions_and_sharing_options(positions):
    model = _tiny(positions=positions, share_embeddings=False, tie_output=False)
    assert model.src_embed is not model.tgt_embed
    assert model.out.weight is not model.tgt_embed.weight
    assert model(**model.example_inputs()).logits.shape == (2, 6, 20)


def test_sinusoid_table_matches_section_3_5():
    from zoo_transformer.layers.positional import sinusoidal_table

    table = sinusoidal_table(7, 8)
    pos, i = 5, 3
    torch.testing.assert_close(table[pos, 2 * i],
                               torch.tensor(pos / 10000 ** (2 * i / 8)).sin().float())
    torch.testing.assert_close(table[pos, 2 * i + 1],
                               torch.tensor(pos / 10000 ** (2 * i / 8)).cos().float())


def _score(model, src, seq, alpha):
    with torch.no_grad():
        memory, mask = model.encode(src)
        logp = model.decode(torch.tensor([seq[:-1]]), memory, mask)[0].log_softmax(-1)
    total = sum(logp[t, tok].item() for t, tok in enumerate(seq[1:]))
    return total / length_penalty(len(seq) - 1, alpha)


def test_beam_search_finds_the_exhaustive_optimum():
    model = _tiny(src_vocab_size=5, tgt_vocab_size=5)  # pad 0, bos 1, eos 2, tokens 3, 4
    src = torch.tensor([[3, 4, 4]])
    max_new, alpha = 3, 0.6
    best, best_seq = float("-inf"), None
    for n in range(1, max_new + 1):  # every EOS-terminated sequence of ≤ max_new tokens
        for body in itertools.product([3, 4], repeat=n - 1):
            seq = [1, *body, 2]
            s = _score(model, src, seq, alpha)
            if s > best:
                best, best_seq = s, seq
    for body in itertools.product([3, 4], repeat=max_new):  # unfinished at the limit
        seq = [1, *body]
        with torch.no_grad():
            memory, mask = model.encode(src)
            logp = model.decode(torch.tensor([seq]), memory, mask)[0, :-1].log_softmax(-1)
        s = sum(logp[t, tok].item() for t, tok in enumerate(seq[1:])) / \
            length_penalty(max_new, alpha)
        if s > best:
            best, best_seq = s, seq
    got = beam_search(model, src, beam_size=16, max_new_tokens=max_new, alpha=alpha)
    assert got[0].tolist() == best_seq


def test_beam_of_one_is_greedy():
    model = _tiny()
    src = model.example_inputs()["src_ids"]
    g = greedy(model, src, 8)
    b = beam_search(model, src, 1, 8)
    for row_g, row_b in zip(g.tolist(), b.tolist(), strict=True):
        strip = lambda r: r[: r.index(2) + 1] if 2 in r else [t for t in r if t]  # noqa: E731
        assert strip(row_g) == strip(row_b)


def test_bad_config_and_inputs(monkeypatch):
    with pytest.raises(zoo.ConfigError, match="share_embeddings"):
        zoo.create("model:transformer", preset="tiny", tgt_vocab_size=30)
    model = _tiny()
    monkeypatch.setenv("ZOO_DEBUG", "1")  # value checks synchronise: debug only
    with pytest.raises(zoo.InputError, match=r"src_ids must be in \[0, 20\), got a value 20"):
        model(torch.tensor([[20]]), torch.tensor([[1]]))
    with pytest.raises(zoo.InputError, match="beam_size"):
        model.generate(torch.tensor([[3]]), beam_size=0)


def test_training_step_reduces_loss():
    model = _tiny()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    src = torch.randint(3, 20, (16, 6))
    tgt = torch.cat([torch.ones(16, 1, dtype=torch.long), src.flip(1)], 1)
    labels = torch.cat([src.flip(1), torch.full((16, 1), 2)], 1)
    first = None
    for _ in range(30):
        loss = model(src, tgt, labels=labels).loss
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
