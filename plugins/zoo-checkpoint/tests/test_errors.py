"""Bad policies, budgets and models give clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from zoo_checkpoint.example import ResidualMLP, ResidualMLPConfig

import zoo_core as zoo
from zoo_core import ZooError


def test_unknown_policy_lists_the_valid_ones():
    with pytest.raises(ZooError, match=r"unknown checkpointing policy 'sqrtt' \(did you mean "
                                       r"'sqrt'\?\); valid policies: every, every-k, sqrt, "
                                       r"budget, selective, none"):
        zoo.create("transform:checkpoint", policy="sqrtt")


def test_budget_below_minimum_reports_the_minimum():
    model = ResidualMLP(ResidualMLPConfig(width=16, hidden=64, depth=4))
    with pytest.raises(ZooError, match=r"budget=10 bytes is below the minimum achievable "
                                       r"\d+ bytes"):
        model.set_grad_checkpointing("budget", budget=10)


@pytest.mark.parametrize("options, match", [
    ({}, "exactly one of budget="),
    ({"budget": 10, "fraction": 0.5}, "exactly one of budget="),
    ({"budget": -1}, "budget=-1 must be a non-negative int"),
    ({"fraction": 1.5}, r"fraction=1.5 must lie in \[0, 1\]"),
])
def test_budget_options(options, match):
    with pytest.raises(ZooError, match=match):
        zoo.create("transform:checkpoint", policy="budget", **options)


@pytest.mark.parametrize("k", [0, -2, 1.5, True])
def test_bad_k(k):
    with pytest.raises(ZooError, match=f"k={k!r} must be a positive int"):
        zoo.create("transform:checkpoint", policy="every-k", k=k)


class Plain(zoo.Model):
    config_class = ResidualMLPConfig

    def __init__(self, config):
        super().__init__(config)
        self.fc = nn.Linear(4, 4)


class Empty(Plain):
    supports_grad_checkpointing = True

    def grad_checkpointing_blocks(self):
        return []


@pytest.mark.parametrize("cls, match", [
    (Plain, "found no blocks to checkpoint in Plain"),
    (Empty, "found no blocks to checkpoint in Empty"),
])
def test_models_without_blocks_explain_how_to_declare_them(cls, match):
    transform = zoo.create("transform:checkpoint", policy="every")
    with pytest.raises(ZooError, match=match) as err:
        transform.apply(cls(ResidualMLPConfig()))
    assert "supports_grad_checkpointing = True" in str(err.value)
    with pytest.raises(ZooError, match="supports_grad_checkpointing = True"):
        cls(ResidualMLPConfig()).set_grad_checkpointing("every")


def test_module_without_blocks_is_refused():
    with pytest.raises(ZooError, match="found no blocks to checkpoint in Linear.*blocks="):
        zoo.create("transform:checkpoint").apply(nn.Linear(2, 2))
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("blocks, match", [
    ("encoder.layers", r"blocks='encoder.layers' names no module list in Sequential"),
    ([nn.Linear(2, 2), "x"], "block 'x' of Sequential is not an nn.Module"),
])
def test_bad_named_blocks(blocks, match):
    with pytest.raises(ZooError, match=match):
        zoo.create("transform:checkpoint", blocks=blocks).apply(nn.Sequential(nn.Linear(2, 2)))
