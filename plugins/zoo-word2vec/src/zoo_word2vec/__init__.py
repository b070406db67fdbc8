"""zoo-word2vec: skip-gram and CBOW with negative sampling and hierarchical softmax.

Public names are imported on first use, so that the registry's entry module
(:mod:`zoo_word2vec.plugin`) stays light: importing the package imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LineSentences": "corpus", "evaluate_word_analogies": "evaluate",
    "evaluate_word_pairs": "evaluate", "load_word2vec_format": "formats",
    "save_word2vec_format": "formats", "KeyedVectors": "keyedvectors",
    "TrainReport": "trainer", "Word2Vec": "word2vec", "Word2VecConfig": "word2vec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
