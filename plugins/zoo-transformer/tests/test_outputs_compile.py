"""Forward passes compile whole (no device synchronisation, no graph break), and outputs
behave like transformers' ``ModelOutput``."""

from __future__ import annotations

import pytest
import torch
import transformers as tf

import zoo_core as zoo

COMPONENTS = ["model:bert", "model:roberta", "model:distilbert", "model:albert",
              "model:bert-mlm", "model:bert-pretraining", "model:bert-classifier",
              "model:bert-token-classifier", "model:bert-sentence-embedding",
              "model:transformer"]


@pytest.mark.parametrize("ref", COMPONENTS)
def test_forward_compiles_without_graph_breaks(ref):
    """dynamo only (backend="eager"): fullgraph=True raises on any graph break, and so on
    every ``.item()``, ``int(t)``, ``bool(t)`` or data-dependent branch in the forward."""
    torch._dynamo.reset()
    model = zoo.create(ref, preset="tiny").eval()
    inputs = model.example_inputs()
    with torch.enable_grad():  # the padded path, the one compiled (eager inference packs)
        want = model(**inputs)
    with torch.no_grad():
        got = torch.compile(model, backend="eager", fullgraph=True)(**inputs)
    want = want if isinstance(want, torch.Tensor) else want.to_tuple()
    got = got if isinstance(got, torch.Tensor) else got.to_tuple()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def _pair(tmp_path):
    """transformers' BertModel and ours on the same weights, run on one padded batch; and
    its mask."""
    torch.manual_seed(0)
    peer = tf.BertModel(tf.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=37)).eval()
    peer.save_pretrained(tmp_path)
    ours = zoo.load(f"dir:{tmp_path}")
    ids = torch.randint(1, 99, (2, 5))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        return (peer(input_ids=ids, attention_mask=mask), ours(input_ids=ids, attention_mask=mask),
                mask.bool())


def _close(got, want, keep):
    """Equal on the real tokens: padding positions hold whatever transformers' padded layers
    give there, and zeros from zoo's packed inference (``layers.packing``)."""
    if got.dim() == 3:
        got, want = got[keep], want[keep]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_output_access_like_transformers(tmp_path):
    want, got, keep = _pair(tmp_path)
    assert list(got.keys()) == list(want.keys()) == ["last_hidden_state", "pooler_output"]
    assert len(got) == len(want) == 2
    for key in want:
        _close(got[key], want[key], keep)
        assert got[key] is getattr(got, key)
    for i in range(2):
        _close(got[i], want[i], keep)
    assert len(got[:1]) == len(want[:1]) == 1
    assert len(got.to_tuple()) == len(want.to_tuple()) == 2
    assert dict(got).keys() == dict(want).keys()
    assert ("pooler_output" in got) == ("pooler_output" in want)


def test_none_fields_are_skipped_like_transformers(tmp_path):
    """A field left None is no key, no position and no tuple item, yet reads as None."""
    want = tf.modeling_outputs.MaskedLMOutput(logits=torch.ones(1))
    got = zoo.create("model:bert-mlm", preset="tiny").eval()(
        torch.tensor([[5, 6, 7]]))  # no labels: loss stays None
    assert want.loss is None and got.loss is None
    assert list(want.keys()) == ["logits"] and list(got.keys()) == ["logits"]
    assert len(want.to_tuple()) == len(got.to_tuple()) == 1
    assert got[0] is got.logits
    for out in (want, got):
        with pytest.raises(KeyError):
            out["loss"]
        with pytest.raises(IndexError):
            out[1]
    assert "loss" not in got and got.get("loss") is None
