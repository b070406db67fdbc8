"""CUDA checks: the fused loss against the generic path, half precision at cos θ = ±1."""

from __future__ import annotations

import pytest
import torch
from zoo_face.margin import MarginLoss

import zoo_core as zoo

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

NAMES = ["softmax", "l-softmax", "sphereface", "normface", "cosface", "arcface",
         "combined-margin", "subcenter-arcface", "adaface", "magface"]


@pytest.mark.parametrize("name", ["arcface", "cosface", "magface", "adaface"])
def test_fused_equals_generic_path_on_cuda(name):
    torch.manual_seed(0)
    loss = zoo.create(f"loss:{name}", embedding_size=64, num_classes=5000).cuda().eval()
    x = (torch.randn(128, 64, device="cuda") * 10).requires_grad_()
    t = torch.randint(0, 5000, (128,), device="cuda")
    t[5] = -100
    out = []
    for fn in (type(loss).forward, MarginLoss.forward):
        loss.zero_grad()
        x.grad = None
        value = fn(loss, x, t)
        value.backward()
        out.append((value.detach(), x.grad.clone(), loss.weight.grad.clone()))
    for a, b in zip(*out, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_on_cuda_no_nan(name, dtype):
    loss = zoo.create(f"loss:{name}", embedding_size=8, num_classes=4).cuda().to(dtype)
    w = loss.weight.detach().reshape(4, -1, 8)[:, 0]
    x = torch.cat([w[:2] * 400, -w[2:] * 400]).requires_grad_()
    value = loss(x, torch.arange(4, device="cuda"))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad.float()).all()
    assert torch.isfinite(loss.weight.grad.float()).all()


def test_partial_fc_on_cuda():
    pfc = zoo.create("loss:partial-fc", loss="arcface", embedding_size=32, num_classes=1000,
                     sample_rate=0.1).cuda()
    x = torch.randn(64, 32, device="cuda", requires_grad=True)
    value = pfc(x, torch.randint(0, 1000, (64,), device="cuda"))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
