"""Vocabulary, Huffman tree and sampling tables against gensim and the paper's formulas."""

import pytest
import torch
from gensim.models import Word2Vec as GensimWord2Vec
from zoo_word2vec.vocab import (
    Vocab,
    alias_table,
    count_words,
    expected_code_length,
    huffman,
    noise_table,
    unigram_cdf,
)

import zoo_core as zoo


def test_vocab_matches_gensim(lee):
    ours = zoo.create("model:word2vec", min_count=3).build_vocab(lee)
    ref = GensimWord2Vec(min_count=3)
    ref.build_vocab(lee)
    kv = ours.wv
    assert len(kv) == len(ref.wv)
    assert {w: c for w, c in zip(kv.index_to_key, kv.counts, strict=True)} == \
        {w: int(ref.wv.get_vecattr(w, "count")) for w in ref.wv.index_to_key}
    assert kv.index_to_key == ref.wv.index_to_key              # order too, ties included
    assert ours.corpus_total_words == ref.corpus_total_words == sum(map(len, lee))
    assert ours.corpus_count == ref.corpus_count == len(lee)


def test_max_vocab_size_prunes_like_gensim(lee):
    ours = zoo.create("model:word2vec", min_count=1, max_vocab_size=2000).build_vocab(lee)
    ref = GensimWord2Vec(min_count=1, max_vocab_size=2000)
    ref.build_vocab(lee)
    assert set(ours.wv.index_to_key) == set(ref.wv.index_to_key)


def test_keep_probability_matches_gensim(lee):
    ours = zoo.create("model:word2vec", min_count=2, sample=1e-3).build_vocab(lee)
    ref = GensimWord2Vec(min_count=2, sample=1e-3)
    ref.build_vocab(lee)
    keep = ours.training_tables()["keep_prob"]
    for w in ["the", "of", "said", "fire", "australia"]:
        expected = ref.wv.get_vecattr(w, "sample_int") / 2**32
        assert keep[ours.wv.index(w)].item() == pytest.approx(expected, abs=1e-6)


def test_huffman_is_optimal_and_prefix_free(lee):
    ours = zoo.create("model:word2vec", min_count=2, hs=1, negative=0).build_vocab(lee)
    ref = GensimWord2Vec(min_count=2, hs=1, negative=0)
    ref.build_vocab(lee)
    t = ours.training_tables()
    counts = ours.wv.counts
    ref_lengths = torch.tensor([len(ref.wv.get_vecattr(w, "code")) for w in ours.wv.index_to_key])
    # any two Huffman trees of the same counts have the same (minimal) expected length
    assert expected_code_length(counts, t["code_lengths"]) == \
        pytest.approx(expected_code_length(counts, ref_lengths), rel=1e-12)
    codes = {"".join(map(str, t["codes"][i, :n].tolist())) for i, n in
             enumerate(t["code_lengths"].tolist())}
    assert len(codes) == len(counts)
    assert not any(a != b and b.startswith(a) for a in codes for b in list(codes)[:200])
    assert int(t["points"][:, 0].max()) == len(counts) - 2  # every path starts at the root


def test_huffman_small_example():
    # counts 5, 2, 1, 1: the classic tree gives lengths 1, 2, 3, 3
    _, _, lengths = huffman([5, 2, 1, 1])
    assert lengths.tolist() == [1, 2, 3, 3]


def test_noise_distribution_is_unigram_to_three_quarters():
    counts = torch.tensor([1000, 300, 50, 7, 1])
    table = noise_table(unigram_cdf(counts, 0.75), size=1_000_000)
    freq = torch.bincount(table.long(), minlength=5).double() / table.numel()
    p = counts.double() ** 0.75
    torch.testing.assert_close(freq, p / p.sum(), atol=2e-6, rtol=0)


def test_alias_tables_give_unigram_to_three_quarters_exactly():
    """Each column's mass (cut / 2**32 to itself, the rest to its alias) adds up, over the
    columns, to counts**0.75 normalised (Mikolov et al. sec. 2.2), within the 2**-32 cuts."""
    g = torch.Generator().manual_seed(0)
    counts = torch.cat([torch.tensor([100_000, 3000, 50, 7, 5, 5]),
                        torch.randint(5, 2000, (500,), generator=g)])
    cut, alias = alias_table(unigram_cdf(counts, 0.75))
    own = cut.double() / 2**32
    mass = own + torch.zeros_like(own).index_add_(0, alias.long(), 1 - own)
    p = counts.double() ** 0.75
    torch.testing.assert_close(mass / counts.numel(), p / p.sum(), atol=1e-9, rtol=0)


@pytest.mark.parametrize("corpus, match", [
    ([], "empty"), ([[]], "empty"), ([["a", "b"]], "min_count"),
    ([["a", 3]], "non-string"), (["a sentence"], "str"), ([("a", "b"), 5], "int"),
])
def test_bad_corpus(corpus, match):
    with pytest.raises(zoo.ZooError, match=match):
        Vocab.from_counts(count_words(corpus)[0], min_count=5)


@pytest.mark.parametrize("field, value", [("vector_size", 0), ("sg", 2), ("negative", -1),
                                          ("window", 1.5), ("alpha", 0.0)])
def test_bad_config(field, value):
    with pytest.raises(zoo.ZooError, match=field):
        zoo.create("model:word2vec", **{field: value})


def test_nothing_to_train():
    with pytest.raises(zoo.ZooError, match="hs=1"):
        zoo.create("model:word2vec", hs=0, negative=0)
