"""Entry module of zoo-checkpoint: light, imports no torch."""

from zoo_core import component, hookimpl

_CHEN = "Chen, Xu, Zhang, Guestrin. Training Deep Nets with Sublinear Memory Cost. arXiv:1604.06174"


@hookimpl
def zoo_components():
    return [
        component("transform:checkpoint", "zoo_checkpoint.transform:Checkpoint",
                  summary="gradient checkpointing policies: every, every-k, sqrt, budget "
                          "(knapsack), selective, none",
                  tags=["memory", "training", "checkpointing"], paper=_CHEN),
    ]
