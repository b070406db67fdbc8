"""BERT-family behaviour: attention backends agree, bad input raises clear errors,
variants' structure follows their papers."""

from __future__ import annotations

import pytest
import torch

import zoo_core as zoo
from zoo_core import REGISTRY, InputError


def _run(backend: str, preset: str = "tiny", component: str = "model:bert"):
    torch.manual_seed(0)
    model = zoo.create(component, preset=preset, attn_backend=backend).eval()
    with torch.no_grad():
        return model(**model.example_inputs()).last_hidden_state


@pytest.mark.parametrize("component,preset", [("model:bert", "tiny"),
                                              ("model:roberta", "tiny"),
                                              ("model:albert", "tiny")])
@pytest.mark.parametrize("backend", ["sdpa", "zoo"])
def test_backends_agree_with_eager(backend, component, preset):
    if backend == "zoo" and "kernel:attention" not in REGISTRY.components():
        pytest.skip("no plugin provides kernel:attention")
    torch.testing.assert_close(_run(backend, preset, component), _run("eager", preset, component),
                               rtol=1e-5, atol=1e-5)


def test_backends_agree_in_gradients():
    grads = {}
    for backend in ("eager", "sdpa"):
        torch.manual_seed(0)
        model = zoo.create("model:bert", preset="tiny", attn_backend=backend, hidden_dropout=0.0,
                           attention_dropout=0.0)
        model(**model.example_inputs()).last_hidden_state.pow(2).mean().backward()
        grads[backend] = model.layers[0].attn.qkv.weight.grad
    torch.testing.assert_close(grads["sdpa"], grads["eager"], rtol=1e-4, atol=1e-6)


def test_zoo_backend_without_kernel_is_a_clear_error(monkeypatch):
    from zoo_transformer.layers import attention

    def missing(ref, *a, **k):
        raise zoo.UnknownNameError(f"unknown component {ref!r}")

    monkeypatch.setattr(zoo, "create", missing)
    with pytest.raises(zoo.ZooError, match="kernel:attention.*zoo-flashattn"):
        attention.MultiHeadAttention(8, 2, backend="zoo")  # resolved when built


def test_unknown_backend():
    with pytest.raises(zoo.ZooError, match="'flash'.*eager"):
        zoo.create("model:bert", preset="tiny", attn_backend="flash")


@pytest.fixture(scope="module")
def tiny():
    return zoo.create("model:bert", preset="tiny").eval()


def test_token_id_out_of_vocab_under_debug_checks(tiny, monkeypatch):
    """Value checks synchronise with the device: only with ZOO_DEBUG=1."""
    ids = torch.tensor([[2, 1000]])
    monkeypatch.setenv("ZOO_DEBUG", "1")
    with pytest.raises(InputError, match=r"input_ids must be in \[0, 1000\), got a value 1000"):
        tiny(ids)
    monkeypatch.setenv("ZOO_DEBUG", "0")
    with pytest.raises(IndexError):  # torch's own embedding lookup refuses it on CPU
        tiny(ids)


def test_sequence_too_long(tiny):
    with pytest.raises(InputError, match=r"length 65.*64 positions"):
        tiny(torch.ones(1, 65, dtype=torch.long))


def test_mask_shape_mismatch(tiny):
    with pytest.raises(InputError, match=r"\(1, 4\).*\(1, 5\)"):
        tiny(torch.ones(1, 5, dtype=torch.long), torch.ones(1, 4))


def test_token_types_refused_without_type_vocab():
    model = zoo.create("model:distilbert", preset="tiny")
    with pytest.raises(InputError, match="no token types"):
        model(torch.ones(1, 4, dtype=torch.long), token_type_ids=torch.zeros(1, 4,
                                                                             dtype=torch.long))


def test_checkpoint_of_another_architecture(tmp_path):
    zoo.create("model:bert", preset="tiny").save_pretrained(tmp_path)
    albert = zoo.create("model:albert", preset="tiny")
    with pytest.raises(zoo.WeightsError, match="missing keys.*project"):
        zoo.load_state_dict(albert, zoo.read_safetensors(tmp_path / "model.safetensors"))


def test_padding_does_not_change_real_tokens(tiny):
    ids = torch.randint(1, 1000, (1, 6))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[1] * 6 + [0] * 3])
    with torch.no_grad():
        a = tiny(ids).last_hidden_state
        b = tiny(padded, mask).last_hidden_state[:, :6]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_albert_shares_one_layer_and_factorises_embeddings():
    albert = zoo.create("model:albert", preset="tiny")
    assert len(albert.layers) == 1 and albert.config.num_layers == 2
    assert albert.embeddings.word.weight.shape == (1000, 16)
    assert albert.project.weight.shape == (32, 16)


def test_roberta_positions_skip_padding():
    roberta = zoo.create("model:roberta", preset="tiny")
    ids = torch.tensor([[0, 5, 6, 2, 1, 1]])  # pad id 1
    # RoBERTa (and fairseq) count positions from pad_token_id + 1 over non-padding tokens
    assert roberta.embeddings.positions(ids).tolist() == [[2, 3, 4, 5, 1, 1]]


def test_mlm_decoder_is_tied_to_word_embeddings():
    model = zoo.create("model:bert-mlm", preset="tiny")
    assert model.mlm.word[0].weight is model.bert.embeddings.word.weight
    assert not any(k.startswith("mlm.word") for k in model.state_dict())


def test_sentence_embeddings_are_unit_and_mask_aware():
    model = zoo.create("model:bert-sentence-embedding", preset="tiny").eval()
    ids = torch.randint(1, 1000, (1, 5))
    padded = torch.cat([ids, torch.zeros(1, 2, dtype=torch.long)], 1)
    with torch.no_grad():
        a = model(ids)
        b = model(padded, torch.tensor([[1] * 5 + [0] * 2]))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(1))
