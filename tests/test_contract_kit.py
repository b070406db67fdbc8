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


@dataclass(frozen=True)
class SyncConfig:
    width: int = 3


class Syncing(zoo.Model):
    """Broken on purpose: its forward asks the device for a value and refuses bad input with
    a plain ValueError; it returns only integers."""

    config_class = SyncConfig
    presets = {"tiny": SyncConfig(), "wide": SyncConfig(width=64)}
    parameter_counts = {"wide": 64 * 64 + 1}  # declared wrong: the bias has 64 entries

    def __init__(self, config: SyncConfig) -> None:
        super().__init__(config)
        self.fc = nn.Linear(config.width, config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"x must be (B, width), got shape {tuple(x.shape)}")
        y = self.fc(x)
        if bool(y.sum() > 0):  # a host sync: a graph break under torch.compile
            y = y * 2
        return y.argmax(-1)

    def example_inputs(self) -> dict[str, torch.Tensor]:
        return {"x": torch.ones(2, self.config.width)}

    def bad_inputs(self) -> list[dict[str, torch.Tensor]]:
        return [{"x": torch.ones(self.config.width)}]


class Strict(Syncing):
    """Refuses its bad input with a ZooError, but also accepts one it should refuse."""

    parameter_counts = {"wide": 64 * 64 + 64}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise zoo.InputError(f"x must be (B, width), got shape {tuple(x.shape)}")
        return self.fc(x)

    def bad_inputs(self) -> list[dict[str, torch.Tensor]]:
        return [{"x": torch.ones(self.config.width)}, {"x": torch.ones(2, self.config.width)}]


class Refusing(Strict):
    def bad_inputs(self) -> list[dict[str, torch.Tensor]]:
        return [{"x": torch.ones(self.config.width)}]


class SyncPlugin:
    @hookimpl
    def zoo_components(self) -> list[zoo.Component]:
        return [component("model:syncing", f"{__name__}:Syncing"),
                component("model:strict", f"{__name__}:Strict"),
                component("model:refusing", f"{__name__}:Refusing")]

    @hookimpl
    def zoo_expected_failures(self) -> dict[str, str]:
        return {"model:syncing::compiles": "bool(y.sum() > 0) in forward",
                "model:refusing::compiles": "claimed, but it compiles"}


def test_new_checks_catch_syncs_plain_errors_int_outputs_and_wrong_counts() -> None:
    zoo.register_plugin(SyncPlugin(), "sync")
    try:
        results = {c.id: (s, d) for c, s, d in run_checks(plugin="sync")}
    finally:
        zoo.unregister_plugin("sync")
    assert results["model:syncing::compiles"][0] == "xfailed"  # declared by the hook
    assert "graph break" in results["model:syncing::compiles"][1]
    assert results["model:strict::compiles"][0] == "passed"
    assert results["model:refusing::compiles"][0] == "xpassed"  # strict: the entry must go
    assert results["model:syncing::bad_inputs"][0] == "failed"
    assert "raised ValueError" in results["model:syncing::bad_inputs"][1]
    assert results["model:strict::bad_inputs"][0] == "failed"
    assert "was accepted" in results["model:strict::bad_inputs"][1]
    assert results["model:refusing::bad_inputs"][0] == "passed"
    assert results["model:syncing::to_dtype"][0] == "failed"  # only integers came out
    assert "nothing shows" in results["model:syncing::to_dtype"][1]
    assert results["model:syncing[wide]::preset"][0] == "failed"
    assert "4,160 parameters, declared 4,097" in results["model:syncing[wide]::preset"][1]
    assert results["model:strict[wide]::preset"][0] == "passed"  # built on meta, forward ran


def test_toy_without_bad_inputs_skips_that_check() -> None:
    status = {c.id: (s, d) for c, s, d in run_checks(plugin="toy")}
    assert status["model:toy-mlp::bad_inputs"][0] == "skipped"
    assert "declares no bad_inputs()" in status["model:toy-mlp::bad_inputs"][1]
    assert status["model:toy-mlp[small]::preset"][0] == "passed"
    assert status["model:toy-mlp::compiles"][0] == "passed"
    assert status["loss:toy-hinge::compiles"][0] == "passed"


def test_pytest_plugin_generates_the_matrix_for_a_plugin_folder(tmp_path) -> None:
    """A folder whose pyproject declares a zoo entry point gets the matrix, with the plugin's
    expected failures strict: a declared failure that passes fails the run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    toy_src = Path(__file__).parent / "thirdparty" / "zoo-toy" / "src"
    info = tmp_path / "zoo_toy2-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-toy2\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[zoo]\ntoy2 = zoo_toy2\n")
    (tmp_path / "zoo_toy2.py").write_text(
        "from zoo_toy.plugin import zoo_components\nfrom zoo_core import hookimpl\n"
        "@hookimpl\ndef zoo_expected_failures():\n"
        "    return {'model:toy-mlp::forward': 'claimed broken, but it works'}\n")
    folder = tmp_path / "zoo-toy2"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "zoo-toy2"\n[project.entry-points.zoo]\ntoy2 = "zoo_toy2"\n')
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{toy_src}",
           "ZOO_PLUGINS": "toy2"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider",
         "-o", "addopts=", "-rfsxX", "--rootdir", str(folder)],
        capture_output=True, text=True, env=env, timeout=600, cwd=folder)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "XPASS(strict)" in out and "contract[model:toy-mlp::forward]" in out
    assert "contract[model:toy-mlp[small]::preset]" not in out.split("short test summary")[-1] \
        or "PASSED" in out
    summary = out.strip().splitlines()[-1]
    assert "1 failed" in summary and " passed" in summary and "skipped" in summary, summary
