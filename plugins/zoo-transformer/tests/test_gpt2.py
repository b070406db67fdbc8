"""GPT-2 against ``transformers``' ``GPT2LMHeadModel``: checkpoints saved by transformers load
through ``dir:`` and the loopback Hub, logits agree within 1e-4 (fp32), and ``generate`` gives
the same tokens (greedy, left-padded, seeded sampling)."""

from __future__ import annotations

import json

import pytest
import torch
import transformers as tf
from zoo_transformer.search import filter_logits

import zoo_core as zoo

EOS = 98
SMALL = dict(vocab_size=99, n_positions=48, n_embd=32, n_layer=2, n_head=4, bos_token_id=EOS,
             eos_token_id=EOS)


def _peer(path, arch: str = "GPT2LMHeadModel", **overrides) -> tf.PreTrainedModel:
    torch.manual_seed(0)
    peer = getattr(tf, arch)(tf.GPT2Config(**{**SMALL, **overrides})).eval()
    with torch.no_grad():  # non-trivial biases and norms, so the mapping is really tested
        for p in peer.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    peer.save_pretrained(path)
    return peer


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt2")
    peer = _peer(path)
    return peer, zoo.load(f"dir:{path}")


def _ids(batch: int = 3, seq: int = 11, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, EOS, (batch, seq), generator=g)


def test_logits_equal_transformers(pair):
    peer, ours = pair
    ids = _ids()
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # right padding: the positions before it are unaffected
    with torch.no_grad():
        want = peer(ids, attention_mask=mask, labels=ids)
        got = ours(ids, attention_mask=mask, labels=ids)
    keep = mask.bool()
    torch.testing.assert_close(got.logits[keep], want.logits[keep], rtol=0, atol=1e-4)
    torch.testing.assert_close(got.loss, want.loss, rtol=0, atol=1e-4)


def test_gpt2model_checkpoint_has_the_tied_head(tmp_path):
    peer = _peer(tmp_path, "GPT2Model")
    ours = zoo.load(f"dir:{tmp_path}")
    ids = _ids()
    with torch.no_grad():
        hidden = peer(ids).last_hidden_state
        want = hidden @ peer.wte.weight.T
        got = ours(ids).logits
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


def test_greedy_generate_equals_transformers(pair):
    peer, ours = pair
    ids = _ids()
    want = peer.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                         do_sample=False, pad_token_id=EOS)
    assert torch.equal(ours.generate(ids, max_new_tokens=20), want)
    assert torch.equal(ours.generate(ids, max_new_tokens=20, use_cache=False), want)


def test_left_padded_generate_equals_transformers(pair):
    peer, ours = pair
    ids = _ids(seed=2)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    mask[2, :2] = 0
    ids = ids.masked_fill(~mask.bool(), EOS)
    want = peer.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                         pad_token_id=EOS)
    assert torch.equal(ours.generate(ids, max_new_tokens=12, attention_mask=mask), want)


@pytest.mark.parametrize("options", [dict(top_k=10, top_p=0.9, temperature=0.7),
                                     dict(top_k=0, top_p=1.0, temperature=1.3)])
def test_seeded_sampling_equals_transformers(pair, options):
    peer, ours = pair
    ids = _ids(seed=3)
    torch.manual_seed(5)
    want = peer.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=15,
                         do_sample=True, pad_token_id=EOS, **options)
    torch.manual_seed(5)
    assert torch.equal(ours.generate(ids, max_new_tokens=15, do_sample=True, **options), want)


def test_eos_ends_a_row_and_pads_it(pair):
    _, ours = pair
    ids = _ids(batch=1)
    first = ours.generate(ids, max_new_tokens=1)[0, -1].item()
    out = ours.generate(ids, max_new_tokens=10, eos_token_id=first)
    assert out.shape == (1, ids.shape[1] + 1) and out[0, -1] == first


def test_filter_logits_matches_transformers_warpers():
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    scores = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    want = TopPLogitsWarper(0.8)(None, TopKLogitsWarper(20)(None, TemperatureLogitsWarper(0.5)(
        None, scores.clone())))
    torch.testing.assert_close(filter_logits(scores, 0.5, 20, 0.8), want)
    with pytest.raises(zoo.InputError, match="top_p must be in"):
        filter_logits(scores, top_p=1.5)
    with pytest.raises(zoo.InputError, match="temperature must be > 0"):
        filter_logits(scores, temperature=0.0)


def test_causal_attention_goes_through_the_kernel(pair):
    _, ours = pair
    assert ours.config.attn_backend == "zoo"
    calls = []
    kernel = zoo.create("kernel:attention")
    for layer in ours.layers:
        layer.attn._kernel = lambda *a, **kw: calls.append(kw) or kernel(*a, **kw)
    try:
        ours.generate(_ids(batch=1), max_new_tokens=3)
    finally:
        for layer in ours.layers:
            layer.attn._kernel = kernel
    # the prompt attends causally; a step's one query may see every cached key
    layers = len(ours.layers)
    assert len(calls) == 3 * layers and all(c["causal"] for c in calls[:layers])


def test_loads_from_the_hub(tmp_path, zoo_hub):
    peer = _peer(tmp_path)
    files = {n: (tmp_path / n).read_bytes() for n in ("config.json", "model.safetensors")}
    rev = zoo_hub.commit("me/tiny-gpt2", files)
    ours = zoo.load(f"hf:me/tiny-gpt2@{rev}")
    ids = _ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, peer(ids).logits, rtol=0, atol=1e-4)


def test_zoo_run_gpt2_small(tmp_path, zoo_hub, monkeypatch, capsys):
    """The catalogue entry's task from the command line, on a tiny checkpoint over the real
    Hub client (vocabulary of the gpt2 tokenizer entry)."""
    from zoo_core.cli import main

    peer = _peer(tmp_path, vocab_size=50257, bos_token_id=50256, eos_token_id=50256)
    files = {n: (tmp_path / n).read_bytes() for n in ("config.json", "model.safetensors")}
    rev = zoo_hub.commit("me/tiny-gpt2", files)
    config = json.loads(files["config.json"])
    fields = {k: config[k] for k in ("n_positions", "n_embd", "n_layer", "n_head")}
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        'schema = 1\n[entries.gpt2-small]\ncomponent = "model:gpt2"\nlayout = "hf-gpt2"\n'
        'task = "text-generation"\ntokenizer = "gpt2"\n'
        f'config = {{ max_positions = {fields["n_positions"]}, hidden_size = '
        f'{fields["n_embd"]}, num_layers = {fields["n_layer"]}, num_heads = {fields["n_head"]}, '
        f'intermediate_size = {4 * fields["n_embd"]} }}\n'
        f'sources = ["hf:me/tiny-gpt2@{rev}"]\nfiles = {{ "model.safetensors" = "" }}\n')
    monkeypatch.setenv("ZOO_CATALOG", str(catalog))
    zoo.CATALOG.invalidate()
    try:
        assert main(["run", "gpt2-small", "Hello world", "--json"]) == 0
    finally:
        zoo.CATALOG.invalidate()
    result = json.loads(capsys.readouterr().out)
    tok = zoo.load("gpt2")
    prompt = tok.encode("Hello world")
    want = peer.generate(torch.tensor([prompt]), max_new_tokens=40, do_sample=False,
                         pad_token_id=50256)[0, len(prompt):].tolist()
    assert result["task"] == "text-generation" and result["inputs"] == ["Hello world"]
    assert result["rows"] == [["Hello world", "Hello world" + tok.decode(want), 40]]


def test_refusals(tmp_path, pair):
    _, ours = pair
    with pytest.raises(zoo.InputError, match="exceed the model's 48 positions"):
        ours.generate(_ids(), max_new_tokens=40)
    with pytest.raises(zoo.InputError, match="attention_mask has shape"):
        ours(_ids(), attention_mask=torch.ones(3, 4))
    _peer(tmp_path, "GPT2ForSequenceClassification")
    with pytest.raises(zoo.ConfigError, match="'GPT2ForSequenceClassification'.*supported"):
        zoo.load(f"dir:{tmp_path}")
