"""zoo-word2vec: skip-gram and CBOW with negative sampling and hierarchical softmax.

Importing the package imports torch; the registry entry module is :mod:`zoo_word2vec.plugin`.
"""

from .corpus import LineSentences
from .evaluate import evaluate_word_analogies, evaluate_word_pairs
from .formats import load_word2vec_format, save_word2vec_format
from .keyedvectors import KeyedVectors
from .trainer import TrainReport
from .word2vec import Word2Vec, Word2VecConfig

__all__ = ["KeyedVectors", "LineSentences", "TrainReport", "Word2Vec", "Word2VecConfig",
           "evaluate_word_analogies", "evaluate_word_pairs", "load_word2vec_format",
           "save_word2vec_format"]
