"""gensim's everyday Word2Vec code, run twice with only the import swapped: gensim's
``gensim.models`` or ``zoo_word2vec``. Written from gensim's Word2Vec tutorial and API docs.

Training is random and multi-threaded in both, so "the same results" means: the deterministic
structure (vocabulary, key order, counts, shapes, types, corpus counts) is equal, and on real
text (gensim's Lee corpus) the similarities agree with gensim's as well as two gensim seeds
agree with each other.
"""

from __future__ import annotations

import math
import pickle

import gensim.models
import numpy as np
import pytest
import torch
import zoo_word2vec
from gensim.test.utils import common_texts

import zoo_core as zoo

PEERS = {"gensim": gensim.models, "zoo": zoo_word2vec}
MORE = [["human", "interface", "robot"], ["robot", "arm", "human"], ["robot", "graph"]]


def everyday(models, tmp_path) -> dict:
    """The tutorial: train from the constructor, query, save/load, continue online."""
    tmp_path.mkdir()
    model = models.Word2Vec(sentences=common_texts, vector_size=10, window=5, min_count=1,
                            workers=1, sg=1, hs=0, negative=5, sample=1e-3, epochs=20,
                            seed=1, compute_loss=True)
    wv = model.wv
    out = {
        "index_to_key": list(wv.index_to_key),
        "key_to_index": dict(wv.key_to_index),
        "counts": [int(wv.get_vecattr(w, "count")) for w in wv.index_to_key],
        "vectors": (type(wv.vectors), wv.vectors.shape, wv.vectors.dtype),
        "vector": (type(wv["computer"]), wv["computer"].shape, wv["computer"].dtype),
        "get_vector": bool(np.array_equal(wv.get_vector("computer"), wv["computer"])),
        "unit": bool(np.isclose(np.linalg.norm(wv.get_vector("computer", norm=True)), 1.0)),
        "many": wv[["computer", "user"]].shape,
        "corpus": (model.corpus_count, model.corpus_total_words),
        "attributes": (model.vector_size, model.window, model.min_count, model.sg,
                       model.epochs, model.negative),
    }
    sims = wv.most_similar("computer", topn=3)
    out["most_similar"] = [(type(w), type(float(s))) for w, s in sims]
    out["most_similar_excludes_query"] = "computer" not in [w for w, _ in sims]
    pos_neg = wv.most_similar(positive=["user", "system"], negative=["trees"], topn=4)
    out["pos_neg"] = len(pos_neg)
    s = wv.similarity("user", "system")
    out["similarity_in_range"] = bool(-1 <= s <= 1)
    out["similarity_symmetric"] = bool(np.isclose(s, wv.similarity("system", "user"),
                                                  atol=1e-6))
    loss = model.get_latest_training_loss()
    out["loss"] = bool(isinstance(loss, float) and math.isfinite(loss) and loss > 0)
    # save and load, the whole model and the vectors alone
    model.save(str(tmp_path / "w2v.model"))
    again = type(model).load(str(tmp_path / "w2v.model"))
    out["loaded"] = (again.wv.index_to_key == wv.index_to_key,
                     bool(np.array_equal(again.wv.vectors, wv.vectors)))
    wv.save(str(tmp_path / "w2v.kv"))
    kv = models.KeyedVectors.load(str(tmp_path / "w2v.kv"))
    out["kv_loaded"] = bool(np.array_equal(kv["graph"], wv["graph"]))
    # online training: new words appended, known vectors kept until trained
    before = wv["graph"].copy()
    model.build_vocab(MORE, update=True)
    out["updated"] = (list(model.wv.index_to_key),
                      [int(model.wv.get_vecattr(w, "count")) for w in model.wv.index_to_key],
                      model.wv.vectors.shape, model.corpus_count, model.corpus_total_words,
                      bool(np.array_equal(model.wv["graph"], before)))
    trained, raw = model.train(MORE, total_examples=model.corpus_count, epochs=model.epochs)
    out["train_returns"] = (raw, 0 <= trained <= raw)
    out["trained_new"] = model.wv.most_similar("robot", topn=2)[0][0] in model.wv
    return out


def test_everyday_usage_matches_gensim(tmp_path):
    ours = everyday(zoo_word2vec, tmp_path / "zoo")
    ref = everyday(gensim.models, tmp_path / "gensim")
    assert ours.keys() == ref.keys()
    for key in ref:
        assert ours[key] == ref[key], key


@pytest.mark.parametrize("sg,hs", [(1, 0), (0, 0), (1, 1)])
def test_no_nan_epoch_losses_on_common_texts(sg, hs):
    """sample=1e-3 on 29 words drops all but a few: epochs with no prediction add 0."""
    model = zoo_word2vec.Word2Vec(common_texts, vector_size=10, min_count=1, sample=1e-3,
                                  sg=sg, hs=hs, negative=0 if hs else 5, epochs=20, workers=1,
                                  compute_loss=True)
    report = model.last_report
    assert all(math.isfinite(v) for v in report.epoch_losses)
    assert all(v == 0.0 for v, n in zip(report.epoch_losses, report.epoch_predictions,
                                        strict=True) if n == 0)
    assert sum(report.epoch_predictions) > 0
    assert math.isfinite(model.get_latest_training_loss())
    assert model.get_latest_training_loss() == pytest.approx(report.loss_sum)


def test_loss_is_zero_without_compute_loss():
    ref = gensim.models.Word2Vec(common_texts, min_count=1, workers=1)
    ours = zoo_word2vec.Word2Vec(common_texts, min_count=1, workers=1)
    assert ours.get_latest_training_loss() == ref.get_latest_training_loss() == 0.0


def test_gensim_pickles_are_refused(tmp_path):
    ref = gensim.models.Word2Vec(common_texts, vector_size=8, min_count=1, workers=1)
    ref.save(str(tmp_path / "gensim.model"))
    with pytest.raises(zoo.InputError, match="pickle.*save_word2vec_format"):
        zoo_word2vec.Word2Vec.load(tmp_path / "gensim.model")
    with open(tmp_path / "evil.kv", "wb") as f:
        pickle.dump({"x": 1}, f)
    with pytest.raises(zoo.InputError, match="pickle"):
        zoo_word2vec.KeyedVectors.load(tmp_path / "evil.kv")


def test_model_file_is_not_a_keyedvectors_file(tmp_path):
    model = zoo_word2vec.Word2Vec(common_texts, vector_size=8, min_count=1, workers=1)
    model.save(tmp_path / "m")
    with pytest.raises(zoo.InputError, match="'zoo-word2vec', not 'zoo-keyedvectors'"):
        zoo_word2vec.KeyedVectors.load(tmp_path / "m")


def test_constructor_errors():
    with pytest.raises(zoo.ZooError, match="vector_sise"):
        zoo_word2vec.Word2Vec(common_texts, vector_sise=10)
    with pytest.raises(zoo.InputError, match="twice"):
        zoo_word2vec.Word2Vec(common_texts, sentences=common_texts)
    with pytest.raises(zoo.InputError, match="build_vocab"):
        zoo_word2vec.Word2Vec(vector_size=8).build_vocab(common_texts, update=True)


def _similarities(wv, pairs):
    return torch.tensor([float(wv.similarity(a, b)) for a, b in pairs])


def test_quality_on_lee_matches_gensim(lee):
    """The same constructor call on the Lee corpus: similarities of frequent word pairs agree
    with gensim's about as well as gensim's with another gensim seed."""
    kw = dict(vector_size=32, window=5, min_count=5, sg=1, negative=5, epochs=8, workers=2)
    g1 = gensim.models.Word2Vec(sentences=lee, seed=1, **kw)
    g2 = gensim.models.Word2Vec(sentences=lee, seed=2, **kw)
    ours = zoo_word2vec.Word2Vec(sentences=lee, seed=3, **kw)
    assert ours.wv.index_to_key == g1.wv.index_to_key                 # deterministic: equal
    assert ours.corpus_total_words == g1.corpus_total_words
    words = g1.wv.index_to_key[20:220]
    gen = torch.Generator().manual_seed(0)
    pairs = [(words[a], words[b]) for a, b in
             torch.randint(0, len(words), (400, 2), generator=gen).tolist() if a != b]
    s1, s2, so = (_similarities(m.wv, pairs) for m in (g1, g2, ours))
    baseline = torch.corrcoef(torch.stack([s1, s2]))[0, 1]
    agree = torch.corrcoef(torch.stack([s1, so]))[0, 1]
    assert agree > baseline - 0.1, (float(agree), float(baseline))
