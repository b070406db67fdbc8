"""Segment checkpointing (sqrt, every-k) keeps the matrix products that are dear to recompute:
gradients stay those of the un-checkpointed run, and the backward re-runs the narrow products
only (counted against the un-checkpointed backward)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from zoo_checkpoint._tape import KEEP_MIN_INNER
from zoo_checkpoint.example import ResidualMLP, ResidualMLPConfig

import zoo_core as zoo

_PRODUCTS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default}


class _CountProducts(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        self.n += func in _PRODUCTS
        return func(*args, **(kwargs or {}))


class InPlaceBlock(nn.Module):
    """A block that overwrites its wide product's output in place."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, KEEP_MIN_INNER), nn.Linear(KEEP_MIN_INNER, 8)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(torch.tanh(self.fc1(x))).mul_(0.5).add_(x)


class InPlaceNet(nn.Module):
    supports_grad_checkpointing = True

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(InPlaceBlock() for _ in range(4))

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return list(self.blocks)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def wide_mlp() -> ResidualMLP:
    torch.manual_seed(0)
    return ResidualMLP(ResidualMLPConfig(width=8, hidden=KEEP_MIN_INNER, depth=4, dropout=0.2))


def grads(model: nn.Module, x: Tensor) -> tuple[dict[str, Tensor], int]:
    """Gradients of one step (same seed each time) and the products its backward ran."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    loss = model(x).pow(2).mean()
    with _CountProducts() as counter:
        loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}, counter.n


@pytest.mark.parametrize("build", [wide_mlp, InPlaceNet])
@pytest.mark.parametrize("policy", ["sqrt", "every-k"])
def test_gradients_equal_uncheckpointed(build, policy):
    model = build()
    x = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    want, _ = grads(model, x)
    twin = zoo.create("transform:checkpoint", policy=policy).apply(copy.deepcopy(model))
    got, _ = grads(twin, x)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-6, atol=1e-6,
                                   msg=f"{policy}: gradient of {name} differs")


def test_backward_skips_the_wide_products():
    x = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    for build, recomputed in ((wide_mlp, 4), (InPlaceNet, 8)):
        _, none = grads(build(), x)
        _, sqrt = grads(zoo.create("transform:checkpoint", policy="sqrt").apply(build()), x)
        # 4 blocks: fc1 re-run in each; fc2 (inner size KEEP_MIN_INNER) kept, unless the block
        # overwrote its output in place (InPlaceNet): then it is re-run too
        assert sqrt == none + recomputed, build.__name__
