"""Backbones: published sizes, embedding shapes, checkpointable blocks, bad configs."""

from __future__ import annotations

import pytest
import torch
from torch.utils.checkpoint import checkpoint
from zoo_face import FaceInputError

import zoo_core as zoo


def n_params(m: torch.nn.Module) -> float:
    return sum(p.numel() for p in m.parameters()) / 1e6


@pytest.mark.parametrize("ref, preset, millions", [
    ("model:iresnet", "iresnet100", 65.2),       # ArcFace's IR-100 (insightface model zoo)
    ("model:iresnet", "iresnet50", 43.6),
    ("model:mobilefacenet", "mobilefacenet-128", 0.99),   # MobileFaceNets paper, Table 2
])
def test_parameter_counts_match_published_models(ref, preset, millions):
    with torch.device("meta"):
        model = zoo.create(ref, preset=preset)
    assert n_params(model) == pytest.approx(millions, rel=0.015)


@pytest.mark.parametrize("ref, preset", [("model:iresnet", "iresnet18"),
                                         ("model:mobilefacenet", "mobilefacenet")])
def test_112_crops_give_512_d_embeddings(ref, preset):
    with torch.device("meta"):                  # shapes only, no arithmetic
        model = zoo.create(ref, preset=preset).eval()
        assert model(torch.empty(2, 3, 112, 112)).shape == (2, 512)


@pytest.mark.parametrize("ref", ["model:iresnet", "model:mobilefacenet"])
def test_checkpointing_blocks_recompute_to_the_same_gradients(ref):
    torch.manual_seed(0)
    model = zoo.create(ref, preset="tiny").train()
    x = model.example_inputs()["images"]
    blocks = model.grad_checkpointing_blocks()
    assert blocks
    grads = []
    for wrap in (False, True):
        for b in blocks:
            b.forward = (lambda f: (lambda *a: checkpoint(f, *a, use_reentrant=False)))(
                type(b).forward.__get__(b)) if wrap else type(b).forward.__get__(b)
        model.zero_grad()
        model(x).square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n])


def test_iresnet_head_scale_is_fixed():
    model = zoo.create("model:iresnet", preset="tiny")
    assert not model.features.weight.requires_grad


@pytest.mark.parametrize("ref, kw, match", [
    ("model:iresnet", {"input_size": 100}, "input_size=100"),
    ("model:iresnet", {"layers": (1, 1)}, "layers="),
    ("model:mobilefacenet", {"input_size": 100}, "input_size=100"),
])
def test_bad_configs(ref, kw, match):
    with pytest.raises(FaceInputError, match=match):
        zoo.create(ref, **kw)
