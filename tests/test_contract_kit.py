"""The contract kit passes good components and catches broken ones."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

import zoo_core as zoo
from zoo_core import component, hookimpl
from zoo_core.testing import cases, parametrize_components, run_checks


@pytest.fixture(autouse=True)
def _toy(toy: str) -> None:
    pass


def test_toy_plugin_passes_every_check() -> None:
    results = run_checks(plugin="toy")
    assert {s for _, s, _ in results} <= {"passed", "skipped", "opted out"}, results
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


def test_toy_checks_its_input_its_count_and_prints_its_opt_out(capsys) -> None:
    from zoo_core.cli import main

    status = {c.id: (s, d) for c, s, d in run_checks(plugin="toy")}
    assert status["model:toy-mlp::bad_inputs"][0] == "passed"
    assert status["model:toy-mlp[small]::preset"] == ("passed", "")
    assert status["model:toy-mlp::compiles"][0] == "passed"
    assert status["loss:toy-hinge::compiles"][0] == "passed"
    assert status["loss:toy-hinge::bad_inputs"] == ("opted out", "a toy: it trusts its caller")
    assert main(["check", "toy"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "toy-hinge\tbad_inputs" in x)
    assert line.split("\t")[2:] == ["opted out", "a toy: it trusts its caller"]


@dataclass(frozen=True)
class BareConfig:
    width: int = 2


class Bare(zoo.Model):
    """Declares no bad_inputs() and no parameter count for its second preset."""

    config_class = BareConfig
    presets = {"tiny": BareConfig(), "wide": BareConfig(width=8)}

    def __init__(self, config: BareConfig) -> None:
        super().__init__(config)
        self.fc = nn.Linear(config.width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    def example_inputs(self) -> dict[str, torch.Tensor]:
        return {"x": torch.ones(2, self.config.width)}


class Excused(Bare):
    contract_opt_outs = {"bad_inputs": "any float matrix is valid",
                         "parameter_count": "no published count"}


class NoCases(zoo.Transform):
    def apply(self, model: nn.Module, **options: object) -> nn.Module:
        return model


class BarePlugin:
    @hookimpl
    def zoo_components(self) -> list[zoo.Component]:
        return [component("model:bare", f"{__name__}:Bare"),
                component("model:excused", f"{__name__}:Excused"),
                component("transform:nocases", f"{__name__}:NoCases")]


def test_a_missing_contract_method_fails_unless_opted_out_with_a_reason() -> None:
    """Old kit: bad_inputs and the transform checks skipped silently, the preset passed with
    no count; now each fails, naming the method and how to opt out."""
    zoo.register_plugin(BarePlugin(), "bare")
    try:
        status = {c.id: (s, d) for c, s, d in run_checks(plugin="bare")}
    finally:
        zoo.unregister_plugin("bare")
    state, detail = status["model:bare::bad_inputs"]
    assert state == "failed" and "does not implement bad_inputs()" in detail
    assert "contract_opt_outs" in detail
    state, detail = status["model:bare[wide]::preset"]
    assert state == "failed" and "no declared parameter count" in detail
    assert "(9 parameters)" in detail
    assert status["model:excused::bad_inputs"] == ("opted out", "any float matrix is valid")
    assert status["model:excused[wide]::preset"][0] == "passed"
    for check in ("preserves", "bad_inputs"):
        state, detail = status[f"transform:nocases::{check}"]
        assert state == "failed" and "does not implement" in detail, (check, detail)


@pytest.mark.parametrize("kind", zoo.KINDS)
def test_each_kind_declares_the_methods_its_checks_call(kind: str) -> None:
    from zoo_core.testing.contracts import METHODS

    base = getattr(zoo, kind.capitalize())
    for method in METHODS[kind]:
        assert callable(getattr(base, method, None)), f"{base.__name__} lacks {method}()"
    assert base.contract_opt_outs == {}


def test_checks_tensor_refuses_with_the_value_and_the_fix() -> None:
    x = torch.zeros(2, 3, dtype=torch.long)
    assert zoo.checks.tensor(x, "ids", ndim=2, dtype="integer", shape=(None, 3)) is x
    with pytest.raises(zoo.InputError, match=r"ids must be a torch.Tensor, got a list \(\[1, "):
        zoo.checks.tensor([1, 2], "ids")
    with pytest.raises(zoo.InputError, match=r"dtype float.*torch.int64.*; use x.float\(\)"):
        zoo.checks.tensor(x, "x", dtype="float", fix="use x.float()")
    with pytest.raises(zoo.InputError, match=r"of shape \(\*, 4\), got \(2, 3\)"):
        zoo.checks.tensor(x, "x", shape=(None, 4))
    with pytest.raises(zoo.InputError, match=r"1 or 3-dimensional"):
        zoo.checks.tensor(x, "x", ndim=(1, 3))
    with pytest.raises(zoo.InputError, match=r"text must be a str, got a int \(3\)"):
        zoo.checks.instance(3, str, "text")
    with pytest.raises(zoo.InputError):
        zoo.checks.instance(True, int, "n")


def test_value_checks_run_only_with_the_one_debug_switch(monkeypatch) -> None:
    ids = torch.tensor([[0, 5]])
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    zoo.checks.in_range(ids, "ids", 0, 4)  # no device read without the switch
    monkeypatch.setenv("ZOO_DEBUG", "1")
    with pytest.raises(zoo.InputError, match=r"ids must be in \[0, 4\), got a value 5"):
        zoo.checks.in_range(ids, "ids", 0, 4)
    zoo.checks.in_range(torch.tensor([-100, 3]), "labels", 0, 4, allow=-100)


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


def test_expected_failures_hook_documents_the_case_ids_the_kit_generates() -> None:
    """The hook's documentation names the keys the kit reads (a preset's case id ends in
    ``::preset``) and says the cases are strict."""
    doc = zoo.REGISTRY.pm.hook.zoo_expected_failures.spec.function.__doc__ or ""
    assert '"kind:name[preset]::preset"' in doc and '"kind:name::check"' in doc
    assert "strict" in doc and "xpassed" in doc and "contract_opt_outs" in doc
    ids = {c.id for c in cases(plugin="toy")}
    assert "model:toy-mlp[small]::preset" in ids and "model:toy-mlp::forward" in ids
