"""Entry module of zoo-word2vec: light, imports no torch."""

from zoo_core import component, hookimpl


@hookimpl
def zoo_components():
    return [
        component("model:word2vec", "zoo_word2vec.word2vec:Word2Vec",
                  summary="skip-gram / CBOW word vectors with negative sampling or "
                          "hierarchical softmax; compiled CPU training loop, batched torch "
                          "steps on other devices",
                  tags=["word-embedding", "skip-gram", "cbow", "negative-sampling"],
                  paper="https://arxiv.org/abs/1310.4546"),
    ]


@hookimpl
def zoo_expected_failures():
    """Contract cases that fail today (strict: remove an entry once its case passes)."""
    return {"model:word2vec::compiles": "the first forward builds and caches the noise and "
            "Huffman tables from the vocabulary counts on the host (training_tables(); heapq)"}
