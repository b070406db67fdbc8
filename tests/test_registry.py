"""Plugins: registration, duplicates, broken plugins, hook validation, lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import zoo_core as zoo

Registry = type(zoo.REGISTRY)  # a fresh registry per test, through the public API only


def _module(name: str, source: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    exec(textwrap.dedent(source), mod.__dict__)  # noqa: S102 - building a test plugin
    return mod


def test_registered_plugin_lists_its_components(toy: str) -> None:
    assert "model:toy-mlp" in zoo.list()
    assert zoo.list("model:toy*") == ["model:toy-mlp"]
    assert zoo.list(kind="loss", pattern="*toy*") == ["loss:toy-hinge"]
    assert zoo.info("model:toy-mlp")["plugin"] == "toy"


def test_duplicate_refuses_only_the_later_component(toy: str) -> None:
    dup = _module("dup", """
        from zoo_core import component, hookimpl
        @hookimpl
        def zoo_components():
            return [component("model:toy-mlp", "elsewhere:MLP"),
                    component("loss:dup-own", "elsewhere:Loss")]
    """)
    with pytest.warns(UserWarning, match="refused") as caught:
        zoo.register_plugin(dup, "dup")
    try:
        message = str(caught[0].message)
        assert "'model:toy-mlp'" in message and "'toy'" in message and "'dup'" in message
        assert zoo.REGISTRY.get("model:toy-mlp").plugin == "toy"  # the first one is untouched
        assert zoo.REGISTRY.get("loss:toy-hinge").plugin == "toy"
        assert zoo.REGISTRY.get("loss:dup-own").plugin == "dup"  # the rest of dup works
        report = zoo.REGISTRY.reports["dup"]
        assert (report.status, report.components) == ("degraded", ["loss:dup-own"])
        assert report.warnings == [message.partition(": ")[2]]
    finally:
        zoo.unregister_plugin("dup")


def test_strict_mode_refuses_a_duplicate_whole(toy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    dup = _module("dup", """
        from zoo_core import component, hookimpl
        @hookimpl
        def zoo_components():
            return [component("model:toy-mlp", "elsewhere:MLP"),
                    component("loss:dup-own", "elsewhere:Loss")]
    """)
    with pytest.raises(zoo.PluginError, match="'model:toy-mlp' refused: plugin 'toy'"):
        zoo.register_plugin(dup, "dup")
    assert "dup" not in zoo.REGISTRY.reports and "loss:dup-own" not in zoo.list()


GARBAGE = {
    "components not a list": "def zoo_components():\n    return 'model:x'",
    "component not a spec": "def zoo_components():\n    return [('model:x', 'a:b')]",
    "catalog not a list": "def zoo_catalog():\n    return 5",
    "catalog entry not a dict": "def zoo_catalog():\n    return [1, 2]",
    "catalog entry without name": "def zoo_catalog():\n    return [{'component': 'model:x'}]",
    "catalog entry of wrong type": "def zoo_catalog():\n    return [{'name': 'e', 'component': 5}]",
    "runners not a dict": "def zoo_task_runners():\n    return ['tokenize']",
    "runner not an import string": "def zoo_task_runners():\n    return {'tokenize': 3}",
    "task spec without runner": "def zoo_task_runners():\n    return {'t': {'render': 'a:b'}}",
    "task spec with unknown key": "def zoo_task_runners():\n    return {'t': {'runner': 'a:b', "
                                  "'colour': 1}}",
    "task schema not JSON": "def zoo_task_runners():\n    return {'t': {'runner': 'a:b', "
                            "'schema': {'x': object()}}}",
    "task renderer not an import string": "def zoo_task_runners():\n    return {'t': "
                                          "{'runner': 'a:b', 'render': 'nope'}}",
    "hook raises": "def zoo_catalog():\n    raise KeyError('oops')",
}


@pytest.mark.parametrize("body", GARBAGE.values(), ids=GARBAGE.keys())
def test_hook_returning_garbage_is_refused_and_others_keep_working(toy: str, body: str) -> None:
    bad = _module("garbage", "from zoo_core import hookimpl\n@hookimpl\n" + body)
    before = zoo.list()
    with pytest.raises(zoo.PluginError, match="plugin 'garbage'"):
        zoo.register_plugin(bad, "garbage")
    assert "garbage" not in zoo.REGISTRY.reports
    assert zoo.list() == before  # the catalogue still builds: no ValueError traceback
    assert zoo.REGISTRY.task_runners()  # as does every task lookup


def test_foreign_config_garbage_is_noted_in_that_plugin_alone(toy: str) -> None:
    liar = _module("liar", """
        from zoo_core import component, hookimpl
        @hookimpl
        def zoo_components():
            return [component("loss:liar", "x:y")]
        @hookimpl
        def zoo_foreign_config(config):
            return "bert"
    """)
    honest = _module("honest", """
        from zoo_core import hookimpl
        @hookimpl
        def zoo_foreign_config(config):
            return {"component": "model:toy-mlp", "config": {}, "layout": None}
    """)
    zoo.register_plugin(liar, "liar")  # asked first
    zoo.register_plugin(honest, "honest")
    try:
        found = zoo.REGISTRY.foreign_config({"model_type": "toy"})
        assert found == {"component": "model:toy-mlp", "config": {}, "layout": None}
        report = zoo.REGISTRY.reports["liar"]
        assert report.status == "degraded"
        assert "zoo_foreign_config returned 'bert'" in report.problem
        assert "loss:liar" in zoo.list()  # a wrong answer is no reason to drop its components
        assert zoo.REGISTRY.reports["honest"].status == "ok"
    finally:
        zoo.unregister_plugin("honest")
        zoo.unregister_plugin("liar")


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


def _install(folder: Path, plugins: dict[str, str]) -> Path:
    """Fake installed distributions ``zoo-<name>``, each with a ``zoo`` entry point ``name``
    pointing at a module whose source is given; returns the folder to put on the path."""
    for name, body in plugins.items():
        mod = f"zoo_fake_{name}"
        info = folder / f"zoo_fake_{name}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: zoo-fake-{name}\n"
                                       "Version: 1.0\n")
        (info / "entry_points.txt").write_text(f"[zoo]\n{name} = {mod}\n")
        (folder / f"{mod}.py").write_text(textwrap.dedent(body))
    return folder


HEADER = "from zoo_core import component, hookimpl\n@hookimpl\n"
GOOD = HEADER + "def zoo_components():\n    return [component('loss:good', 'x:y')]\n"
BROKEN = "raise RuntimeError('boom at import')\n"


@pytest.fixture
def fake_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two installed distributions with `zoo` entry points: one good, one raising on import."""
    monkeypatch.syspath_prepend(str(_install(tmp_path, {"good": GOOD, "broken": BROKEN})))
    return tmp_path


def test_broken_plugin_is_reported_and_others_work(fake_dists: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_PLUGINS", "good,broken")
    reg = Registry()
    assert "loss:good" in reg.components()
    assert reg.reports["broken"].status == "broken"
    assert "boom at import" in reg.reports["broken"].error


def test_strict_mode_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """alpha loads before zeta fails: strict mode must not leave alpha behind, and must fail
    again on the next call instead of answering from a partial registry."""
    monkeypatch.syspath_prepend(str(_install(tmp_path, {"alpha": GOOD, "zeta": BROKEN})))
    monkeypatch.setenv("ZOO_PLUGINS", "alpha,zeta")
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    reg = Registry()
    for _ in range(2):
        with pytest.raises(zoo.PluginError, match="boom at import"):
            reg.components()
        assert reg.reports == {} and not reg.pm.get_plugins()
    with pytest.raises(zoo.PluginError, match="boom at import"):
        reg.task_runners()
    monkeypatch.delenv("ZOO_STRICT_PLUGINS")
    assert set(reg.components()) == {"loss:good"}
    assert reg.reports["zeta"].status == "broken"


CLAIM_BPE = HEADER + ("def zoo_components():\n    return [component('tokenizer:bpe', 'x:y'), "
                      "component('loss:mine', 'x:y')]\n")
CLAIM_TASK = HEADER + "def zoo_task_runners():\n    return {'tokenize': 'x:y', 'mine': 'x:z'}\n"


def test_entry_point_order_decides_duplicates(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's case: a plugin that sorts first claims one of tokenizers' components.
    Only that component is refused to tokenizers; wordpiece and its task runner keep working."""
    monkeypatch.syspath_prepend(str(_install(tmp_path, {"aaa": CLAIM_BPE, "zzz": CLAIM_TASK})))
    monkeypatch.setenv("ZOO_PLUGINS", "aaa,tokenizers,zzz")
    reg = Registry()
    comps = reg.components()
    assert comps["tokenizer:bpe"].plugin == "aaa" and comps["loss:mine"].plugin == "aaa"
    assert comps["tokenizer:wordpiece"].plugin == "tokenizers"
    assert reg.task_runners() == {"tokenize": "zoo_tokenizers.run:tokenize", "mine": "x:z"}
    report = reg.reports["tokenizers"]
    assert report.status == "degraded" and "tokenizer:wordpiece" in report.components
    assert "'tokenizer:bpe' refused: plugin 'aaa' registered it first" in report.problem
    assert "task runner 'tokenize' refused: plugin 'tokenizers'" in reg.reports["zzz"].problem
    assert reg.reports["aaa"].status == "ok"


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


def _zoo(tmp_path: Path, plugins: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process, the fake distributions of ``tmp_path`` and zoo-toy importable,
    loading only the plugins named."""
    toy = Path(__file__).parent / "thirdparty" / "zoo-toy" / "src"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{toy}", "ZOO_PLUGINS": plugins,
           "ZOO_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    env.pop("ZOO_STRICT_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "zoo_core.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def _warnings(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("zoo: warning: plugin")]


def test_cli_survives_a_stolen_component(tmp_path: Path) -> None:
    _install(tmp_path, {"aaa": CLAIM_BPE, "zzz": CLAIM_TASK})
    proc = _zoo(tmp_path, "aaa,tokenizers,zzz", "--json", "run", "bert-base-uncased", "Hello")
    assert proc.returncode == 0, proc.stderr
    assert "hello" in proc.stdout
    lines = _warnings(proc)
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith("zoo: warning: plugin 'tokenizers': component 'tokenizer:bpe' "
                               "refused: plugin 'aaa' registered it first")
    assert lines[1].startswith("zoo: warning: plugin 'zzz': task runner 'tokenize' refused")
    assert all(line.endswith("(see `zoo plugins`)") for line in lines)


def test_every_command_names_each_broken_plugin_on_stderr(tmp_path: Path) -> None:
    garbage = HEADER + "def zoo_catalog():\n    return 5\n"
    _install(tmp_path, {"good": GOOD, "broken": BROKEN, "garbage": garbage})
    for args, code in [(["list"], 0), (["--json", "list"], 0), (["info", "loss:good"], 0),
                       (["plugins"], 1), (["fetch", "no-such-entry"], 1)]:
        proc = _zoo(tmp_path, "good,broken,garbage", *args)
        assert proc.returncode == code, (args, proc.stderr)
        lines = _warnings(proc)
        assert [line.split("'")[1] for line in lines] == ["broken", "garbage"], args
        assert "boom at import" in lines[0] and "zoo_catalog returned 5" in lines[1]
        assert "Traceback" not in proc.stderr
    listed = json.loads(_zoo(tmp_path, "good,broken,garbage", "--json", "list").stdout)
    assert "loss:good" in [row["name"] for row in listed]


def test_zoo_check_fails_on_a_broken_empty_or_torch_importing_plugin(tmp_path: Path) -> None:
    toy = "from zoo_toy.plugin import zoo_components\n"
    heavy = "import torch\n" + HEADER + (
        "def zoo_components():\n    return [component('model:heavy-mlp', 'zoo_toy.mlp:MLP')]\n")
    _install(tmp_path, {"broken": BROKEN, "empty": "", "heavy": heavy, "toy": toy})
    names = "broken,empty,heavy,toy"
    broken = _zoo(tmp_path, names, "check", "broken")
    assert broken.returncode == 1 and "plugin 'broken' is broken" in broken.stderr
    assert broken.stderr.count("boom at import") == 1  # the error line, not a second warning
    empty = _zoo(tmp_path, names, "check", "empty")
    assert empty.returncode == 1 and "registers no component" in empty.stderr
    plugins = {p["name"]: p for p in json.loads(_zoo(tmp_path, names, "--json", "plugins").stdout)}
    assert plugins["heavy"]["imports_torch"] and plugins["heavy"]["status"] == "degraded"
    assert "imports torch" in plugins["heavy"]["warnings"][0]
    assert not plugins["toy"]["imports_torch"] and plugins["toy"]["status"] == "ok"
    heavy_check = _zoo(tmp_path, names, "--json", "check", "heavy")
    assert heavy_check.returncode == 1, heavy_check.stderr
    assert {r["status"] for r in json.loads(heavy_check.stdout)} <= {"passed", "skipped"}
    assert "imports torch" in heavy_check.stderr
    assert _zoo(tmp_path, names, "check", "toy").returncode == 0
