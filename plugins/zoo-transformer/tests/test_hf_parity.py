"""Tiny random ``transformers`` models saved with ``save_pretrained`` load through
``zoo.load("dir:…")`` and give the same hidden states and logits (fp32, padding masks)."""

from __future__ import annotations

import pytest
import torch
import transformers as tf

import zoo_core as zoo

SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=37, max_position_embeddings=40)

CASES = {
    "bert": (tf.BertConfig, dict(SMALL, type_vocab_size=2)),
    "roberta": (tf.RobertaConfig, dict(SMALL, type_vocab_size=1, pad_token_id=1,
                                       bos_token_id=0, eos_token_id=2)),
    "distilbert": (tf.DistilBertConfig, dict(vocab_size=99, dim=32, n_layers=2, n_heads=4,
                                             hidden_dim=37, max_position_embeddings=40)),
    "albert": (tf.AlbertConfig, dict(SMALL, embedding_size=16, type_vocab_size=2)),
}
HEADS = {"bert": ["Model", "ForMaskedLM", "ForPreTraining", "ForSequenceClassification",
                  "ForTokenClassification"],
         "roberta": ["Model", "ForMaskedLM", "ForTokenClassification"],
         "distilbert": ["Model", "ForMaskedLM", "ForTokenClassification"],
         "albert": ["Model", "ForMaskedLM", "ForPreTraining", "ForSequenceClassification"]}
NAMES = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert", "albert": "Albert"}


def _inputs(model_type: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ids, mask = batch["input_ids"].clone(), batch["attention_mask"]
    pad = 1 if model_type == "roberta" else 0
    ids[mask == 0] = pad
    out = {"input_ids": ids, "attention_mask": mask}
    if model_type in ("bert", "albert"):
        types = torch.zeros_like(ids)
        types[:, 3:] = 1
        out["token_type_ids"] = types
    return out


def _peer(model_type: str, head: str, tmp_path):
    cls, kwargs = CASES[model_type]
    torch.manual_seed(0)
    labels = 2 if head == "ForPreTraining" else 3  # ALBERT's SOP head has num_labels outputs
    config = cls(**kwargs, attn_implementation="eager", num_labels=labels)
    peer = getattr(tf, f"{NAMES[model_type]}{head}")(config).eval()
    with torch.no_grad():  # non-trivial biases and norms so the mapping is really tested
        for p in peer.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    peer.save_pretrained(tmp_path)
    return peer


@pytest.mark.parametrize("model_type,head",
                         [(t, h) for t, hs in HEADS.items() for h in hs])
def test_transformers_checkpoint_parity(model_type, head, padded_batch, tmp_path):
    peer = _peer(model_type, head, tmp_path)
    ours = zoo.load(f"dir:{tmp_path}")
    inputs = _inputs(model_type, padded_batch)
    with torch.no_grad():
        want = peer(**inputs)
        got = ours(**inputs)
    keep = inputs["attention_mask"].bool()
    if head == "Model":
        torch.testing.assert_close(got.last_hidden_state[keep], want.last_hidden_state[keep],
                                   rtol=1e-5, atol=1e-5)
        if want.get("pooler_output") is not None:
            torch.testing.assert_close(got.pooler_output, want.pooler_output,
                                       rtol=1e-5, atol=1e-5)
    elif head == "ForPreTraining":
        torch.testing.assert_close(got.mlm_logits[keep], want.prediction_logits[keep],
                                   rtol=1e-5, atol=1e-5)
        nsp = want.seq_relationship_logits if model_type == "bert" else want.sop_logits
        torch.testing.assert_close(got.nsp_logits, nsp, rtol=1e-5, atol=1e-5)
    elif head == "ForSequenceClassification":
        torch.testing.assert_close(got.logits, want.logits, rtol=1e-5, atol=1e-5)
    else:
        torch.testing.assert_close(got.logits[keep], want.logits[keep], rtol=1e-5, atol=1e-5)


def test_mlm_loss_matches_peer(padded_batch, tmp_path):
    peer = _peer("bert", "ForMaskedLM", tmp_path)
    ours = zoo.load(f"dir:{tmp_path}")
    inputs = _inputs("bert", padded_batch)
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, 2] = inputs["input_ids"][:, 2]
    with torch.no_grad():
        want = peer(**inputs, labels=labels).loss
        got = ours(**inputs, labels=labels).loss
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_unsupported_architecture_is_refused(tmp_path):
    config = tf.RobertaConfig(**CASES["roberta"][1], num_labels=3)
    tf.RobertaForSequenceClassification(config).save_pretrained(tmp_path)
    with pytest.raises(zoo.ZooError, match="RobertaForSequenceClassification"):
        zoo.load(f"dir:{tmp_path}")


def test_legacy_gamma_beta_names(padded_batch, tmp_path):
    """Old BERT checkpoints name layer-norm parameters gamma/beta; the layout maps them."""
    from safetensors.torch import load_file, save_file

    peer = _peer("bert", "Model", tmp_path)
    path = tmp_path / "model.safetensors"
    state = load_file(str(path))
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma")
              .replace("LayerNorm.bias", "LayerNorm.beta"): v for k, v in state.items()}
    assert any(k.endswith("gamma") for k in legacy)
    save_file(legacy, str(path), metadata={"format": "pt"})
    ours = zoo.load(f"dir:{tmp_path}")
    inputs = _inputs("bert", padded_batch)
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs).pooler_output, peer(**inputs).pooler_output,
                                   rtol=1e-5, atol=1e-5)


def test_encoder_takes_its_weights_out_of_a_checkpoint_with_heads(padded_batch, tmp_path):
    """``bert.``-prefixed keys of a pre-training checkpoint load into the bare encoder; the
    MLM and NSP heads it lacks are left out, as transformers' AutoModel does."""
    peer = _peer("bert", "ForPreTraining", tmp_path)
    ours = zoo.create("model:bert", preset="tiny", **{
        "vocab_size": 99, "hidden_size": 32, "num_layers": 2, "num_heads": 4,
        "intermediate_size": 37, "max_position_embeddings": 40}).eval()
    zoo.load_state_dict(ours, zoo.read_safetensors(tmp_path / "model.safetensors"), "hf-bert")
    inputs = _inputs("bert", padded_batch)
    with torch.no_grad():
        want, got = peer.bert(**inputs), ours(**inputs)
    torch.testing.assert_close(got.pooler_output, want.pooler_output, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_type", ["bert", "albert"])
@pytest.mark.parametrize("rows", ["padded", "full", "no mask"])
def test_packed_inference_and_padded_training_paths_match_transformers(model_type, rows,
                                                                        padded_batch, tmp_path):
    """Without autograd the encoder packs the real tokens (``layers.packing``); with it, the
    padded path runs. Both give transformers' hidden states on the real tokens; packing
    leaves zeros at the padding."""
    peer = _peer(model_type, "Model", tmp_path)
    ours = zoo.load(f"dir:{tmp_path}")
    inputs = _inputs(model_type, padded_batch)
    if rows != "padded":
        inputs["attention_mask"] = torch.ones_like(inputs["attention_mask"])
    keep = inputs["attention_mask"].bool()
    if rows == "no mask":
        del inputs["attention_mask"]
    with torch.no_grad():
        want = peer(**inputs)
        packed = ours(**inputs)
    padded = ours(**inputs)
    assert padded.last_hidden_state.requires_grad
    for got in (packed, padded):
        torch.testing.assert_close(got.last_hidden_state[keep], want.last_hidden_state[keep],
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got.pooler_output, want.pooler_output, rtol=1e-5, atol=1e-5)
    assert not packed.last_hidden_state[~keep].any()


def test_left_padding_keeps_transformers_pooler(padded_batch, tmp_path):
    """A batch padded on the left has padding at position 0, which the pooler reads: it is
    not packed, and the pooled output is transformers' own."""
    peer = _peer("bert", "Model", tmp_path)
    ours = zoo.load(f"dir:{tmp_path}")
    inputs = {k: v.flip(1) for k, v in _inputs("bert", padded_batch).items()}
    keep = inputs["attention_mask"].bool()
    with torch.no_grad():
        want, got = peer(**inputs), ours(**inputs)
    torch.testing.assert_close(got.last_hidden_state[keep], want.last_hidden_state[keep],
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.pooler_output, want.pooler_output, rtol=1e-5, atol=1e-5)
