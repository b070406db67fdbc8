"""Entry module of zoo-word2vec: light, imports no torch."""

from zoo_core import component, hookimpl


@hookimpl
def zoo_components():
    return []
