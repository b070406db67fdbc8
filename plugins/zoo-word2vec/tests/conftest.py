import logging

import pytest
from gensim.test.utils import datapath

logging.getLogger("gensim").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def lee():
    """gensim's Lee background corpus, lower-cased and split (~60k tokens)."""
    with open(datapath("lee_background.cor"), encoding="utf-8") as f:
        return [line.lower().split() for line in f]


@pytest.fixture(scope="session")
def gensim_head500():
    """A gensim CBOW model of head500 (the peer for query and evaluation parity)."""
    from gensim.models import Word2Vec
    from zoo_word2vec import LineSentences

    sentences = list(LineSentences(datapath("head500.noblanks.cor")))
    return Word2Vec(sentences, vector_size=32, window=5, min_count=5, sg=0, negative=5,
                    epochs=3, workers=1, seed=3)
