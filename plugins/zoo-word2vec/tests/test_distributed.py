"""Two gloo processes: sharded training, periodic averaging, identical vectors at the end."""

import numpy as np

from zoo_core.testing import run_distributed


def _train_rank(rank: int, world: int) -> dict:
    from gensim.test.utils import datapath

    import zoo_core as zoo

    with open(datapath("lee_background.cor"), encoding="utf-8") as f:
        lee = [line.lower().split() for line in f][:150]
    model = zoo.create("model:word2vec", vector_size=16, min_count=3, sg=1, epochs=2,
                       workers=1, seed=rank + 1)  # different seeds: rank 0's init wins
    report = model.train(lee, progress=False)
    return {"vectors": model.vectors.detach().numpy().copy(),
            "syn1neg": model.syn1neg.detach().numpy().copy(),
            "words": model.wv.index_to_key, "raw": report.raw_words,
            "losses": report.epoch_losses}


def test_two_gloo_processes_end_identical(lee):
    r0, r1 = run_distributed(_train_rank, world_size=2)
    assert r0["words"] == r1["words"]
    assert np.array_equal(r0["vectors"], r1["vectors"])
    assert np.array_equal(r0["syn1neg"], r1["syn1neg"])
    # each rank read its own half of the sentences, so together they covered the corpus
    assert r0["raw"] + r1["raw"] == 2 * sum(map(len, lee[:150]))
    assert 0 < r0["raw"] < 2 * sum(map(len, lee[:150]))
    assert r0["losses"][-1] < r0["losses"][0] and r1["losses"][-1] < r1["losses"][0]
    assert float(np.linalg.norm(r0["vectors"], axis=1).mean()) > 0.05  # it trained
