"""Entry module of zoo-segmetrics: light, imports no torch."""

from zoo_core import component, hookimpl


@hookimpl
def zoo_components():
    return []
