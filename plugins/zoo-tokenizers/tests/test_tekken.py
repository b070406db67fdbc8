"""Tekken (mistral-common's tekken_*.json) as tokenizer:bpe, identical to the Tekkenizer."""

from __future__ import annotations

import pytest

import zoo_core as zoo

tekken = pytest.importorskip("mistral_common.tokens.tokenizers.tekken")


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
    for backend in ("python", "tiktoken"):
        ours.use_backend(backend)
        for text in texts:
            ids = ref.encode(text, bos=False, eos=False)
            assert ours.encode_ordinary(text) == ids, (backend, text[:80])
            assert ours.decode(ids) == ref.decode(ids)
    assert ours.encode("[INST] hi", allowed_special="all")[0] == ref.get_special_token("[INST]")
