"""A third-party plugin, installed for real into a fresh venv, appears in `zoo list` and passes
`zoo check`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "thirdparty" / "zoo-toy"


def _run(*cmd: str | Path, **kw) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "VIRTUAL_ENV"))}
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                          timeout=600, **kw)


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH")
def test_installed_plugin_is_listed_and_passes_checks(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = _run("uv", "venv", "--quiet", "--python", sys.executable, venv)
    assert made.returncode == 0, made.stderr
    py = venv / "bin" / "python"
    # pinned to the versions of the running environment, so wheels come from uv's cache
    frozen = _run("uv", "pip", "freeze", "--python", sys.executable).stdout.splitlines()
    pins = tmp_path / "pins.txt"
    pins.write_text("\n".join(line for line in frozen if "==" in line and "zoo" not in line))
    toy = shutil.copytree(TOY, tmp_path / "zoo-toy")  # building writes egg-info beside it
    installed = _run("uv", "pip", "install", "--quiet", "--python", py, "-c", pins, ROOT, toy)
    assert installed.returncode == 0, installed.stderr
    zoo = venv / "bin" / "zoo"

    listed = _run(zoo, "--json", "list")
    assert listed.returncode == 0, listed.stderr
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert {"model:toy-mlp", "loss:toy-hinge"} <= names

    plugins = json.loads(_run(zoo, "--json", "plugins").stdout)
    assert [(p["name"], p["distribution"], p["status"]) for p in plugins] == \
        [("toy", "zoo-toy", "ok")]

    checked = _run(zoo, "--json", "check", "toy")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    statuses = {(r["component"], r["check"]): r["status"] for r in json.loads(checked.stdout)}
    assert statuses[("model:toy-mlp", "save_load")] == "passed"
    assert statuses[("loss:toy-hinge", "differentiable")] == "passed"
