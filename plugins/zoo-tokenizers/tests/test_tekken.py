"""Tekken (mistral-common's tekken_*.json) as tokenizer:bpe, identical to the Tekkenizer."""

from __future__ import annotations

import pytest
from mistral_common.tokens.tokenizers import tekken  # a dev dependency: missing fails

import zoo_core as zoo


@pytest.mark.parametrize("entry", ["tekken-240718", "tekken-240911"])
def test_tekken_like_mistral_common(pkgdir, gensim_texts, mixed, entry):
    ref = tekken.Tekkenizer.from_file(pkgdir("mistral_common") / "data" /
                                      f"{entry.replace('-', '_')}.json")
    ours = zoo.load(entry)
    assert ours.vocab_size == ref.n_words
    assert ours.special_tokens["[INST]"] == ref.get_special_token("[INST]")
    assert ours.eot_token is None and ours.special_tokens["</s>"] == ref.eos_id
    texts = [*mixed, "[INST] plain text [/INST] <s>", *gensim_texts["lee"],
             *gensim_texts["head500"][:100], *gensim_texts["enwiki"][:30]]
    ours.use_backend("python")  # parity: our implementation against the peer
    for text in texts:
        ids = ref.encode(text, bos=False, eos=False)
        assert ours.encode_ordinary(text) == ids, text[:80]
        assert ours.decode(ids) == ref.decode(ids)
    # the "tiktoken" engine hands the ranks to tiktoken, which the Tekkenizer runs too: a
    # peer-against-itself leg is no evidence, so it only checks the wiring, on a few texts
    ours.use_backend("tiktoken")
    for text in mixed[:5]:
        assert ours.encode_ordinary(text) == ref.encode(text, bos=False, eos=False)
    ours.use_backend("python")
    assert ours.encode("[INST] hi", allowed_special="all")[0] == ref.get_special_token("[INST]")
