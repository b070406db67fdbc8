"""Entry module of zoo-rnn: light, imports no torch."""

from zoo_core import component, hookimpl


@hookimpl
def zoo_components():
    return []
