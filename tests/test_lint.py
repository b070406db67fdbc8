"""The repo is ruff-clean, and nothing outside zoo_core imports a private zoo_core module."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = [ROOT / "plugins", ROOT / "tests", ROOT / "benchmarks"]
# zoo-core's own white-box tests (and the store's A/B benchmark) may reach its internals
WHITE_BOX = {"test_store_fuzz.py", "test_store_integrity.py", "test_store_stress.py",
             "test_convert.py", "test_tasks.py", "store_load.py", "test_lint.py",
             "test_store_configs.py", "test_store_trust.py"}


def _private_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``zoo_core._x`` imports in one file: ``import zoo_core._x``, ``from zoo_core._x import``
    and ``from zoo_core import _x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if _private(node.module) else \
                [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [f"{path.relative_to(root)}:{node.lineno}: {n}" for n in names if _private(n)]
    return found


def _private(module: str) -> bool:
    top, *parts = module.split(".")
    return top == "zoo_core" and any(p.startswith("_") and p != "__init__" for p in parts)


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (it is a dev dependency: uv sync)")
    return [exe]


def test_ruff_check_is_clean() -> None:
    proc = subprocess.run([*_ruff(), "check", "--output-format", "concise", str(ROOT)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_private_core_import_outside_the_core() -> None:
    files = [p for top in OUTSIDE for p in sorted(top.rglob("*.py"))
             if ".venv" not in p.parts and p.name not in WHITE_BOX]
    bad = [hit for p in files for hit in _private_imports(p)]
    assert not bad, "\n".join(bad)


def test_the_banned_api_rule_catches_a_private_import(tmp_path: Path) -> None:
    """The rule itself works: a plugin-like file importing zoo_core._weights is refused."""
    sample = tmp_path / "plugin_module.py"
    sample.write_text("from zoo_core._weights import load_state_dict\n\nprint(load_state_dict)\n")
    proc = subprocess.run([*_ruff(), "check", "--config", str(ROOT / "pyproject.toml"),
                           "--output-format", "concise", str(sample)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "TID251" in proc.stdout, proc.stdout + proc.stderr
    assert _private_imports(sample, tmp_path) == ["plugin_module.py:1: zoo_core._weights"]
    sample.write_text("import zoo_core._storage\nfrom zoo_core import _names, load\n")
    assert _private_imports(sample, tmp_path) == ["plugin_module.py:1: zoo_core._storage",
                                                  "plugin_module.py:2: zoo_core._names"]


def _dev_modules() -> set[str]:
    """Top-level import names of the dev dependency group (what `uv sync` installs)."""
    import re
    import tomllib
    from importlib.metadata import PackageNotFoundError, distribution

    names = set()
    group = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["dependency-groups"]
    for spec in group["dev"]:
        dist = re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0]
        try:
            top = distribution(dist).read_text("top_level.txt") or ""
        except PackageNotFoundError:
            top = ""
        names |= {line.strip() for line in top.splitlines() if line.strip()}
        names.add(dist.replace("-", "_").lower())
    return names


def _peer_skips(path: Path, dev: set[str]) -> list[str]:
    """``pytest.importorskip`` of a dev dependency in a test file: the dev group installs it,
    so a broken install must fail the file, not skip its parity tests silently."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip" \
                and node.args and isinstance(node.args[0], ast.Constant):
            module = str(node.args[0].value)
            if module.split(".")[0] in dev:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {module}")
    return found


def test_no_test_skips_when_a_dev_dependency_peer_is_missing() -> None:
    dev = _dev_modules()
    assert {"facenet_pytorch", "tiktoken", "tokenizers", "sentencepiece"} <= dev
    found = [hit for folder in (ROOT / "plugins", ROOT / "tests")
             for path in sorted(folder.rglob("test*.py")) + sorted(folder.rglob("conftest.py"))
             if ".venv" not in path.parts for hit in _peer_skips(path, dev)]
    assert not found, "importorskip of a dev dependency (import it plainly):\n" + "\n".join(found)
