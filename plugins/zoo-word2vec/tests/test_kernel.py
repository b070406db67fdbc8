"""The compiled loop, in C and in numba: one pass over a tiny chunk equals the paper's SGD
steps written out in float64 numpy; the C kernel builds, and without a compiler the numba
loop takes over."""

import numpy as np
import pytest
from zoo_word2vec import compiled, native

import zoo_core as zoo

V, D, NOISE, ALPHA = 5, 8, 4, 0.2
ATOL = 1e-5  # float32 steps against float64 ones


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _table_sigmoid(x):
    """The C tool's σ: read at the grid point below x on 1000 points over [-6, 6)."""
    return _sigmoid(np.floor((x + 6) * 1000 / 12) * 12 / 1000 - 6)


def _reference(syn0, syn1neg, syn1, ids, window, sg, cbow_mean, negative, paths):
    """Sequential SGD (eqs. 3-4 of arXiv:1310.4546) over one sentence, every noise word
    ``NOISE``; hierarchical softmax over ``paths`` (word -> [(node, code)])."""
    syn0, syn1neg, syn1 = (a.astype(np.float64) for a in (syn0, syn1neg, syn1))
    loss, preds = 0.0, 0

    def predict(h, word):
        nonlocal loss
        e = np.zeros(D)
        rows = [(syn1[node], 1.0 - code) for node, code in paths.get(word, [])]
        if negative:
            noise = 0 if word == NOISE else negative  # a draw equal to the word is skipped
            rows += [(syn1neg[word], 1.0)] + [(syn1neg[NOISE], 0.0)] * noise
        for u, label in rows:
            f = h @ u
            loss -= np.log(_sigmoid(f if label else -f))
            g = ALPHA * (label - _table_sigmoid(f))
            e += g * u
            u += g * h  # a view: updates the weights
        return e

    for i, word in enumerate(ids):
        ctx = [ids[j] for j in range(max(0, i - window), min(len(ids), i + window + 1)) if j != i]
        if sg:
            for c in ctx:
                syn0[c] += predict(syn0[c], word)
                preds += 1
        else:
            h = syn0[ctx].sum(0) / (len(ctx) if cbow_mean else 1)
            e = predict(h, word) / (1 if cbow_mean else len(ctx))
            for c in ctx:
                syn0[c] += e
            preds += 1
    return syn0, syn1neg, syn1, loss, preds


@pytest.mark.parametrize("engine", ["c", "numba"])
@pytest.mark.parametrize("sg, hs, negative, cbow_mean", [
    (1, 0, 3, 1), (0, 0, 2, 1), (0, 0, 2, 0), (1, 1, 0, 1), (0, 1, 2, 1)])
def test_one_pass_is_sequential_sgd(engine, sg, hs, negative, cbow_mean):
    if engine == "c" and native.kernel() is None:
        pytest.skip("no working C compiler here")
    rng = np.random.default_rng(0)
    syn0, syn1neg, syn1 = (rng.uniform(-0.5, 0.5, (n, D)).astype(np.float32)
                           for n in (V, V, V - 1))
    ids = np.array([0, 1, 2, 1, 3, 4, 0], dtype=np.int64)
    window = 2
    paths = {w: [(w % 4, w % 2), ((w + 1) % 4, 1 - w % 2), (3, 0)][:1 + w % 3]
             for w in range(V)}  # made-up Huffman paths: any tree's are handled alike
    points, codes = (np.array([[p[k] for p in paths[w]] + [0] * (3 - len(paths[w]))
                               for w in range(V)]) for k in (0, 1))
    lengths = np.array([len(paths[w]) for w in range(V)])
    ref = _reference(syn0, syn1neg, syn1, ids, window, sg, cbow_mean, negative,
                     paths if hs else {})
    before = syn0.copy(), syn1neg.copy(), syn1.copy()
    loss, preds = compiled.train_chunk(
        syn0, syn1neg if negative else None, syn1 if hs else None, ids,
        np.zeros(len(ids), dtype=np.int64), np.full(len(ids), window, dtype=np.int64), ALPHA,
        sg=bool(sg), hs=bool(hs), negative=negative, cbow_mean=bool(cbow_mean),
        noise_cut=np.zeros(V, dtype=np.int64),  # every draw takes the alias column: NOISE
        noise_alias=np.full(V, NOISE, dtype=np.int32),
        points=points if hs else None, codes=codes if hs else None,
        code_lengths=lengths if hs else None, seed=1, work=np.empty((2, D), np.float32),
        engine=engine)
    assert preds == ref[4]
    assert loss == pytest.approx(ref[3], rel=1e-5)  # −log σ is interpolated in its table
    for got, want, start in zip((syn0, syn1neg, syn1), ref[:3], before, strict=True):
        assert np.abs(want - start).max() > 20 * ATOL or not np.any(want != start)
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


def test_the_c_kernel_builds_and_a_failed_build_falls_back(monkeypatch, tmp_path):
    """Building itself (cache, atomic rename) is zoo.native's, tested in the core; here: the
    kernel loads, and without a working compiler (or switched off) numba takes over."""
    if native.kernel() is None:
        pytest.skip("no working C compiler here")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert native.kernel() is None
    monkeypatch.setenv("CC", "false")  # a compiler that runs and fails
    assert native.kernel() is None
    assert not list((native.SOURCE.parent / "__pycache__").glob("*.tmp"))
    monkeypatch.delenv("CC")
    monkeypatch.setenv(native.SWITCH, "0")
    assert native.kernel() is None
    assert compiled.available()  # numba takes over
    rng = np.random.default_rng(1)
    start, outs = rng.uniform(-0.5, 0.5, (V, D)).astype(np.float32), []
    for engine in ("auto", "numba"):
        syn0, syn1neg = start.copy(), np.full((V, D), 0.1, np.float32)
        out = compiled.train_chunk(
            syn0, syn1neg, None, np.arange(V, dtype=np.int64), np.zeros(V, dtype=np.int64),
            np.ones(V, dtype=np.int64), ALPHA, sg=True, hs=False, negative=2, cbow_mean=True,
            noise_cut=np.zeros(V, dtype=np.int64), noise_alias=np.zeros(V, dtype=np.int32),
            points=None, codes=None, code_lengths=None, seed=3,
            work=np.empty((2, D), np.float32), engine=engine)
        outs.append((syn0, out))
    assert np.array_equal(outs[0][0], outs[1][0]) and outs[0][1] == outs[1][1]
    with pytest.raises(zoo.ConfigError, match="C kernel"):
        compiled.train_chunk(outs[0][0], syn1neg, None, np.arange(V, dtype=np.int64),
                             np.zeros(V, dtype=np.int64), np.ones(V, dtype=np.int64), ALPHA,
                             sg=True, hs=False, negative=2, cbow_mean=True,
                             noise_cut=np.zeros(V, dtype=np.int64),
                             noise_alias=np.zeros(V, dtype=np.int32), points=None, codes=None,
                             code_lengths=None, seed=3, work=np.empty((2, D), np.float32),
                             engine="c")
