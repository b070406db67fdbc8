"""zoo-word2vec: Skip-gram and CBOW with negative sampling and hierarchical softmax."""
