"""`zoo plugin new` writes a plugin that works as generated: every kind passes the contract
checks in-process; one is installed for real into a fresh venv and passes `zoo check`."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import zoo_core as zoo
from zoo_core.cli import main
from zoo_core.testing import run_checks
from zoo_core.testing.contracts import METHODS

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "VIRTUAL_ENV"))}
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.parametrize("kind", zoo.KINDS)
def test_generated_plugin_passes_its_checks(kind: str, tmp_path: Path) -> None:
    name = f"gen{kind}"
    assert main(["plugin", "new", name, "--kind", kind, "--directory", str(tmp_path)]) == 0
    root = tmp_path / f"zoo-{name}"
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert project["project"]["name"] == f"zoo-{name}"
    assert project["project"]["entry-points"]["zoo"] == {name: f"zoo_{name}.plugin"}
    assert (root / "tests" / f"test_zoo_{name}.py").is_file()

    sys.path.insert(0, str(root / "src"))
    try:
        plugin = importlib.import_module(f"zoo_{name}.plugin")
        assert "torch" not in plugin.__dict__  # the entry module stays light
        zoo.register_plugin(plugin, name)
        results = run_checks(plugin=name)
        assert results and {ref for ref in (c.ref for c, _, _ in results)} == {f"{kind}:{name}"}
        # every check runs: none opted out, none skipped but checkpointing (not declared)
        not_run = [(c.check, s, d) for c, s, d in results if s != "passed"
                   and (c.check, s) != ("checkpointing", "skipped")]
        assert not not_run
        cls = zoo.REGISTRY.get(f"{kind}:{name}").load()
        assert set(METHODS[kind]) <= set(vars(cls)), f"{cls.__name__} leaves a method out"
        assert plugin.zoo_expected_failures() == {}
    finally:
        zoo.unregister_plugin(name) if name in zoo.REGISTRY.reports else None
        sys.path.remove(str(root / "src"))
        for mod in [m for m in sys.modules if m.startswith(f"zoo_{name}")]:
            del sys.modules[mod]


def test_plugin_new_refuses_bad_names_and_existing_folders(tmp_path: Path) -> None:
    assert main(["plugin", "new", "Bad Name", "--directory", str(tmp_path)]) == 1
    assert main(["plugin", "new", "ok", "--directory", str(tmp_path)]) == 0
    assert main(["plugin", "new", "ok", "--directory", str(tmp_path)]) == 1


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH")
def test_generated_plugin_installs_with_uv_and_passes_zoo_check(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert _run("uv", "venv", "--quiet", "--python", sys.executable, venv).returncode == 0
    py, zoo_bin = venv / "bin" / "python", venv / "bin" / "zoo"
    frozen = _run("uv", "pip", "freeze", "--python", sys.executable).stdout.splitlines()
    pins = tmp_path / "pins.txt"
    pins.write_text("\n".join(line for line in frozen if "==" in line and "zoo" not in line))
    installed = _run("uv", "pip", "install", "--quiet", "--python", py, "-c", pins, ROOT)
    assert installed.returncode == 0, installed.stderr
    made = _run(zoo_bin, "plugin", "new", "fresh", "--kind", "metric", "--directory", tmp_path)
    assert made.returncode == 0, made.stderr
    assert Path(made.stdout.strip()) == tmp_path / "zoo-fresh"
    installed = _run("uv", "pip", "install", "--quiet", "--python", py, "-c", pins,
                     f"{tmp_path / 'zoo-fresh'}[test]")
    assert installed.returncode == 0, installed.stderr

    plugins = json.loads(_run(zoo_bin, "--json", "plugins").stdout)
    assert [(p["name"], p["distribution"], p["status"]) for p in plugins] == \
        [("fresh", "zoo-fresh", "ok")]
    checked = _run(zoo_bin, "--json", "check", "fresh")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    statuses = {r["check"]: r["status"] for r in json.loads(checked.stdout)}
    assert statuses == {"streaming": "passed", "merge": "passed", "reset": "passed",
                        "bad_inputs": "passed"}
    tested = _run(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", tmp_path / "zoo-fresh")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "5 passed" in tested.stdout  # the four generated checks and its own test
