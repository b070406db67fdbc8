"""Forward passes compile whole: no device synchronisation, no graph break."""

from __future__ import annotations

import pytest
import torch

import zoo_core as zoo


@pytest.mark.parametrize("ref", ["model:dilated-resnet", "model:deeplabv3",
                                 "model:context-module"])
def test_forward_compiles_without_graph_breaks(ref):
    torch._dynamo.reset()
    model = zoo.create(ref, preset="tiny").eval()
    inputs = model.example_inputs()
    with torch.no_grad():
        want = model(**inputs)
        got = torch.compile(model, backend="eager", fullgraph=True)(**inputs)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
