"""Entry module of zoo-moco: light, imports no torch."""

from __future__ import annotations

from typing import Any

from zoo_core import component, hookimpl

MOCO = "https://arxiv.org/abs/1911.05722"
_M = "zoo_moco"


@hookimpl
def zoo_components() -> list[Any]:
    tags = ["self-supervised", "contrastive", "moco"]
    return [
        component("model:moco", f"{_M}.moco:MoCo",
                  summary="MoCo v1/v2 around any zoo backbone: momentum key encoder, queue of "
                          "negatives, shuffled BN; v3's symmetric loss without a queue",
                  tags=tags, paper=MOCO),
        component("loss:infonce", f"{_M}.loss:InfoNCE",
                  summary="InfoNCE: -log softmax of the positive among negatives at "
                          "temperature T", tags=tags, paper="https://arxiv.org/abs/1807.03748"),
        component("model:convnet", f"{_M}.convnet:ConvNet",
                  summary="small conv-BN-ReLU encoder for low-resolution images (pooled "
                          "features)", tags=["vision", "backbone"], paper=MOCO),
    ]
