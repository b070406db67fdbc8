"""Plugins: registration, duplicates, broken plugins, hook validation, lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import zoo_core as zoo
from zoo_core._registry import Registry


def _module(name: str, source: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(textwrap.dedent(source), mod.__dict__)  # noqa: S102 - building a test plugin
    return mod


def test_registered_plugin_lists_its_components(toy: str) -> None:
    assert "model:toy-mlp" in zoo.list()
    assert zoo.list("model:toy*") == ["model:toy-mlp"]
    assert zoo.list(kind="loss", pattern="*toy*") == ["loss:toy-hinge"]
    assert zoo.info("model:toy-mlp")["plugin"] == "toy"


def test_duplicate_component_names_both_plugins(toy: str) -> None:
    dup = _module("dup", """
        from zoo_core import component, hookimpl
        @hookimpl
        def zoo_components():
            return [component("model:toy-mlp", "elsewhere:MLP")]
    """)
    with pytest.raises(zoo.PluginError) as err:
        zoo.register_plugin(dup, "dup")
    assert "'model:toy-mlp'" in str(err.value)
    assert "'toy'" in str(err.value) and "'dup'" in str(err.value)
    assert zoo.REGISTRY.get("model:toy-mlp").plugin == "toy"  # the first one is untouched


def test_misspelled_hook_is_refused() -> None:
    typo = _module("typo", """
        from zoo_core import hookimpl
        @hookimpl
        def zoo_component():
            return []
    """)
    with pytest.raises(zoo.PluginError, match="did you mean 'zoo_components'"):
        zoo.register_plugin(typo, "typo")
    assert "typo" not in zoo.REGISTRY.reports


def test_hook_with_wrong_signature_is_refused() -> None:
    bad = _module("badsig", """
        from zoo_core import hookimpl
        @hookimpl
        def zoo_foreign_config(config, extra):
            return None
    """)
    with pytest.raises(Exception, match="extra"):
        zoo.register_plugin(bad, "badsig")


def test_bad_component_declarations() -> None:
    with pytest.raises(zoo.PluginError, match="unknown kind 'modle'"):
        zoo.component("modle:x", "a:b")
    with pytest.raises(zoo.PluginError, match="'kind:name'"):
        zoo.component("bert", "a:b")
    with pytest.raises(zoo.PluginError, match="module:attribute"):
        zoo.component("model:x", "a.b")


def test_unknown_component_suggests_close_names(toy: str) -> None:
    with pytest.raises(zoo.UnknownNameError, match="did you mean 'model:toy-mlp'"):
        zoo.create("model:toy-mpl")
    with pytest.raises(zoo.UnknownNameError, match="preset"):
        zoo.create("model:toy-mlp", preset="tinny")
    with pytest.raises(zoo.ZooError, match="hiden"):
        zoo.create("model:toy-mlp", hiden=3)


def test_component_with_unimportable_target(toy: str) -> None:
    ghost = _module("ghost", """
        from zoo_core import component, hookimpl
        @hookimpl
        def zoo_components():
            return [component("loss:ghost", "no_such_module_zoo:Loss")]
    """)
    zoo.register_plugin(ghost, "ghost")
    try:
        with pytest.raises(zoo.PluginError, match="no_such_module_zoo"):
            zoo.create("loss:ghost")
    finally:
        zoo.unregister_plugin("ghost")


@pytest.fixture
def fake_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two installed distributions with `zoo` entry points: one good, one raising on import."""
    for dist, mod, body in [
        ("zoo_good", "zoo_good_plugin", "from zoo_core import component, hookimpl\n"
         "@hookimpl\ndef zoo_components():\n    return [component('loss:good', 'x:y')]\n"),
        ("zoo_broken", "zoo_broken_plugin", "raise RuntimeError('boom at import')\n"),
    ]:
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[zoo]\n{dist.split('_')[1]} = {mod}\n")
        (tmp_path / f"{mod}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_broken_plugin_is_reported_and_others_work(fake_dists: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_PLUGINS", "good,broken")
    reg = Registry()
    assert "loss:good" in reg.components()
    assert reg.reports["broken"].status == "broken"
    assert "boom at import" in reg.reports["broken"].error


def test_strict_mode_makes_a_broken_plugin_fatal(fake_dists: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_PLUGINS", "good,broken")
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(zoo.PluginError, match="boom at import"):
        Registry().components()


def test_zoo_plugins_restricts_loading(fake_dists: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_PLUGINS", "good")
    reg = Registry()
    assert set(reg.components()) == {"loss:good"}
    assert reg.reports["broken"].status == "disabled"
    monkeypatch.setenv("ZOO_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert Registry().components() == {}


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_list_info_plugins_import_no_torch() -> None:
    """Every installed plugin's entry module must stay light. (``info`` of a component imports
    it, to show its presets and config fields; ``info`` of an entry does not.)"""
    code = (
        "import sys\nfrom zoo_core.cli import main\n"
        "for cmd in (['list'], ['plugins'], ['list', '--json'], ['info', 'bert-base']):\n"
        "    main(cmd)\n"
        "import zoo_core as zoo\n"
        "for n in zoo.list(pretrained=True): zoo.info(n)\n"
        "heavy = [m for m in ('torch', 'numpy', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr


def test_cli_exit_codes(toy: str) -> None:
    from zoo_core.cli import main

    assert main(["list"]) == 0
    assert main(["info", "model:toy-mlp"]) == 0
    assert main(["info", "no-such-entry"]) == 1
    with pytest.raises(SystemExit) as usage:
        main(["frobnicate"])
    assert usage.value.code == 2
