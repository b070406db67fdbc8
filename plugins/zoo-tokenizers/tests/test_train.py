"""BPE training: merges against a full-recount reference, export read by HF tokenizers."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import tokenizers  # a dev dependency: missing fails, never skips
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zoo_tokenizers.bpe import BPE
from zoo_tokenizers.merges import learn_merges

import zoo_core as zoo


def naive_merges(words, num_merges, first_id, min_frequency):
    """Sennrich et al. (2016) algorithm 1 as written: recount every pair before each merge."""
    seqs = [(list(s), n) for s, n in words]
    merges = []
    for k in range(num_merges):
        counts = Counter()
        for s, n in seqs:
            for p in zip(s, s[1:], strict=False):
                counts[p] += n
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        if counts[best] < min_frequency:
            break
        new = first_id + k
        merges.append((*best, new))
        for j, (s, n) in enumerate(seqs):
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[j] = (out, n)
    return merges


def test_incremental_counts_match_full_recount(gensim_texts):
    words = Counter(w.encode() for line in gensim_texts["lee"] for w in line.split())
    data = [(list(w), n) for w, n in words.items()]
    assert learn_merges(data, 120, 256, 2) == naive_merges(data, 120, 256, 2)
    tricky = [([1, 1, 1, 1, 1], 3), ([1, 2, 1, 2, 1, 2], 2), ([2, 1, 1, 2], 5)]
    assert learn_merges(tricky, 10, 3, 1) == naive_merges(tricky, 10, 3, 1)


@pytest.fixture(scope="module")
def trained(gensim_texts):
    texts = gensim_texts["lee"] + gensim_texts["head500"][:60]
    return BPE.trained(texts, vocab_size=1500, special_tokens=["<|endoftext|>"],
                       pattern="cl100k")


def test_trained_export_encodes_identically_in_tokenizers(trained, gensim_texts, mixed,
                                                          tmp_path):
    assert trained.vocab_size == 1500 and trained.special_tokens == {"<|endoftext|>": 1499}
    files = trained.save(tmp_path)
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    texts = [*mixed, *gensim_texts["lee"][:20], *gensim_texts["enwiki"][:20]]
    for text in texts:
        ids = trained.encode(text, allowed_special="all")  # HF always matches added tokens
        assert ids == hf.encode(text, add_special_tokens=False).ids, text[:80]
        assert hf.decode(ids, skip_special_tokens=False) == trained.decode(ids) == text
    again = BPE.load(tmp_path)
    assert "bpe.tiktoken" in files and again.encode(texts[0]) == trained.encode(texts[0])
    from_json = BPE.from_file(tmp_path / "tokenizer.json")
    assert from_json.ranks == trained.ranks and from_json.special_tokens == trained.special_tokens
    doc = json.loads((tmp_path / "tokenizer.json").read_text("utf-8"))
    doc["model"]["merges"] = [" ".join(m) for m in doc["model"]["merges"]]  # older HF layout
    (tmp_path / "old.json").write_text(json.dumps(doc), "utf-8")
    assert BPE.from_file(tmp_path / "old.json").ranks == trained.ranks
    doc["model"]["merges"][5] = "Ġzzz Ġqqq"
    (tmp_path / "broken.json").write_text(json.dumps(doc), "utf-8")
    with pytest.raises(zoo.ConfigError, match="broken merge 5 'Ġzzz Ġqqq'"):
        BPE.from_file(tmp_path / "broken.json")


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base"])
def test_packaged_vocab_exports_to_tokenizers(name, gensim_texts, mixed):
    import zoo_core as zoo

    enc = zoo.load(name)
    hf = tokenizers.Tokenizer.from_str(json.dumps(enc.to_tokenizer_json()))
    for text in [*mixed, *gensim_texts["lee"][:10], *gensim_texts["enwiki"][:10]]:
        assert enc.encode(text, allowed_special="all") == hf.encode(text).ids, text[:80]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=0, max_size=60))
def test_roundtrip_arbitrary_unicode(trained, text):
    assert trained.decode(trained.encode_ordinary(text), errors="strict") == text
