"""The contract kit passes good components and catches broken ones."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

import zoo_core as zoo
from zoo_core import component, hookimpl
from zoo_core.testing import parametrize_components, run_checks


@pytest.fixture(autouse=True)
def _toy(toy: str) -> None:
    pass


def test_toy_plugin_passes_every_check() -> None:
    results = run_checks(plugin="toy")
    assert {s for _, s, _ in results} <= {"passed", "skipped"}, results
    assert sum(s == "passed" for _, s, _ in results) >= 8


@dataclass(frozen=True)
class LeakyConfig:
    width: int = 3


class Leaky(zoo.Model):
    """Broken on purpose: an unused parameter and a buffer save_pretrained does not restore."""

    config_class = LeakyConfig
    presets = {"tiny": LeakyConfig()}

    def __init__(self, config: LeakyConfig) -> None:
        super().__init__(config)
        self.fc = nn.Linear(config.width, config.width)
        self.unused = nn.Parameter(torch.zeros(1))
        self.register_buffer("noise", torch.randn(config.width), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + self.noise + torch.rand(1)  # random even in eval mode

    def example_inputs(self) -> dict[str, torch.Tensor]:
        return {"x": torch.ones(2, self.config.width)}


class LeakyPlugin:
    @hookimpl
    def zoo_components(self) -> list[zoo.Component]:
        return [component("model:leaky", f"{__name__}:Leaky")]


def test_broken_model_fails_the_right_checks() -> None:
    zoo.register_plugin(LeakyPlugin(), "leaky")
    try:
        status = {c.check: s for c, s, _ in run_checks(plugin="leaky")}
    finally:
        zoo.unregister_plugin("leaky")
    assert status["gradients"] == "failed"
    assert status["eval_deterministic"] == "failed"
    assert status["save_load"] == "failed"
    assert status["config_roundtrip"] == "passed"


def test_parametrize_helper_marks_expected_failures() -> None:
    mark = parametrize_components(plugin="toy", expected_failures={"to_dtype": "no fp64"}).mark
    assert mark.args[0] == "zoo_case"
    params = {p.id: p for p in mark.args[1]}
    assert "model:toy-mlp::forward" in params and "loss:toy-hinge::finite" in params
    assert [m.kwargs["reason"] for m in params["model:toy-mlp::to_dtype"].marks] == ["no fp64"]
    assert not params["model:toy-mlp::forward"].marks
    with pytest.raises(LookupError, match="no registered component"):
        parametrize_components(plugin="nobody")
