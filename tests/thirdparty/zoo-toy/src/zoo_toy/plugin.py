"""Entry module: light, imports no torch."""

from zoo_core import component, hookimpl


@hookimpl
def zoo_components():
    return [
        component("model:toy-mlp", "zoo_toy.mlp:MLP", summary="two-layer perceptron",
                  tags=["toy"]),
        component("loss:toy-hinge", "zoo_toy.mlp:SquaredHinge", summary="squared hinge loss"),
    ]
