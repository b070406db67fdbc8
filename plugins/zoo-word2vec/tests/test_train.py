"""Training: reported loss, learning against gensim, threads, files, progress bar."""

import math

import pytest
import torch
from gensim.models import Word2Vec as GensimWord2Vec
from gensim.test.utils import datapath
from zoo_word2vec import LineSentences, native

import zoo_core as zoo

TINY_ALPHA = {"alpha": 1e-12, "min_alpha": 1e-12}


def test_loss_at_zero_output_weights_is_code_length_times_log2(lee):
    """With syn1 = 0 every node costs log 2, so the mean loss per CBOW prediction is the
    corpus-weighted mean Huffman code length times log 2 (the same for any Huffman tree)."""
    model = zoo.create("model:word2vec", sg=0, hs=1, negative=0, min_count=2, sample=0,
                       shrink_windows=False, epochs=1, workers=1, **TINY_ALPHA)
    report = model.train(lee, progress=False)
    ref = GensimWord2Vec(min_count=2, hs=1, negative=0)
    ref.build_vocab(lee)
    counts = {w: int(ref.wv.get_vecattr(w, "count")) for w in ref.wv.index_to_key}
    mean_len = sum(c * len(ref.wv.get_vecattr(w, "code")) for w, c in counts.items()) / \
        sum(counts.values())
    assert report.epoch_losses[0] == pytest.approx(mean_len * math.log(2), rel=1e-6)


def test_sgns_loss_at_zero_output_weights(lee):
    """With syn1neg = 0: log 2 for the word and for each of the K noise words (minus the rare
    draws equal to the word itself)."""
    model = zoo.create("model:word2vec", sg=1, negative=5, min_count=2, epochs=1, workers=2,
                       **TINY_ALPHA)
    report = model.train(lee, progress=False)
    assert 5.9 * math.log(2) < report.epoch_losses[0] <= 6 * math.log(2)
    assert report.interval_losses and all(math.isfinite(v) for _, v in report.interval_losses)


@pytest.mark.parametrize("sg, hs, engine, workers", [
    (1, 0, "auto", 2), (0, 0, "auto", 2), (1, 1, "auto", 2), (1, 0, "numba", 2),
    (1, 0, "torch", 1),
    (0, 0, "torch", 1),
    pytest.param(1, 0, "torch", 2, marks=pytest.mark.xfail(
        strict=False, reason="known: two threads of batched torch steps sometimes learn less "
        "(agreement 0.70 against gensim's 0.97 in about 1 run of 3, on 579b106 too)"))])
def test_learns_what_gensim_learns(lee, sg, hs, engine, workers, monkeypatch):
    """Our cosine similarities agree with gensim's about as well as two gensim seeds agree,
    with the compiled loop (``auto`` on the CPU: C, or numba where the C kernel cannot be
    built) and with the batched torch steps."""
    if engine == "numba":  # as without a C compiler
        monkeypatch.setattr(native, "kernel", lambda: None)
        engine = "compiled"
    neg = 0 if hs else 5
    kw = dict(vector_size=32, window=5, min_count=5, sg=sg, hs=hs, negative=neg, epochs=8)
    g1 = GensimWord2Vec(lee, workers=1, seed=1, **kw).wv
    g2 = GensimWord2Vec(lee, workers=1, seed=2, **kw).wv
    model = zoo.create("model:word2vec", workers=workers, seed=3, **kw)
    report = model.train(lee, progress=False, engine=engine)
    assert report.epoch_losses[-1] < report.epoch_losses[0]
    ours = model.wv
    words = g1.index_to_key[20:220]
    gen = torch.Generator().manual_seed(0)
    pairs = torch.randint(0, len(words), (400, 2), generator=gen).tolist()
    pairs = [(words[a], words[b]) for a, b in pairs if a != b]
    s1 = torch.tensor([g1.similarity(a, b) for a, b in pairs])
    s2 = torch.tensor([g2.similarity(a, b) for a, b in pairs])
    so = torch.tensor([ours.similarity(a, b) for a, b in pairs])
    baseline = torch.corrcoef(torch.stack([s1, s2]))[0, 1]
    agree = torch.corrcoef(torch.stack([s1, so]))[0, 1]
    assert agree > baseline - 0.1, (float(agree), float(baseline))


def test_single_worker_is_deterministic(lee):
    kw = dict(vector_size=16, min_count=5, sg=1, epochs=1, workers=1, seed=7)
    a = zoo.create("model:word2vec", **kw)
    a.train(lee[:100], progress=False)
    b = zoo.create("model:word2vec", **kw)
    b.train(lee[:100], progress=False)
    assert torch.equal(a.vectors, b.vectors) and torch.equal(a.syn1neg, b.syn1neg)


def test_streams_a_compressed_file(tmp_path):
    corpus = LineSentences(datapath("head500.noblanks.cor.bz2"), limit=20,
                           max_sentence_length=500)
    first = next(iter(corpus))
    assert len(first) == 500
    model = zoo.create("model:word2vec", vector_size=8, min_count=2, epochs=1, workers=2)
    report = model.train(corpus, progress=False)
    assert report.raw_words == sum(map(len, corpus)) == model.corpus_total_words


def test_progress_bar_shows_words_and_loss(lee, capsys):
    model = zoo.create("model:word2vec", vector_size=8, min_count=5, epochs=1, workers=1)
    model.train(lee[:50], progress=True)
    err = capsys.readouterr().err
    assert "word2vec" in err and "loss=" in err


def test_explicit_zero_overrides_are_honoured(lee):
    """``epochs=0`` trains nothing and ``alpha=0`` moves nothing (not the config's values)."""
    model = zoo.create("model:word2vec", vector_size=8, min_count=5, epochs=3, workers=1)
    model.build_vocab(lee[:50])
    before = model.vectors.detach().clone()
    assert model.train(lee[:50], epochs=0, progress=False).raw_words == 0
    assert torch.equal(model.vectors, before)
    report = model.train(lee[:50], alpha=0.0, min_alpha=0.0, epochs=1, progress=False)
    assert report.raw_words == sum(map(len, lee[:50]))
    assert torch.equal(model.vectors, before)
    with pytest.raises(zoo.ConfigError, match="workers=0"):
        model.train(lee[:50], workers=0, progress=False)
    with pytest.raises(zoo.ConfigError, match="engine='cuda'"):
        model.train(lee[:50], engine="cuda", progress=False)


def test_train_errors(lee):
    model = zoo.create("model:word2vec", min_count=5)
    with pytest.raises(zoo.ZooError, match="no vocabulary"):
        _ = model.wv
    assert model.get_latest_training_loss() == 0.0                 # gensim's, before training
    model.build_vocab(lee)
    with pytest.raises(zoo.ZooError, match="sentence 1 is a str"):
        model.train([["a"], "some text"], progress=False)
    with pytest.raises(zoo.InputError, match="one-shot iterator"):
        model.train(iter(lee), progress=False)
