"""Plugins under attack: hooks fed bad user data, imports that exit, print or stall, catalogue
names claimed twice. Each case is one the registry used to lose to (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import zoo_core as zoo
from tests.test_registry import HEADER, Registry, _install, _module, _zoo

READS_VOCAB = """
    from zoo_core import hookimpl
    @hookimpl
    def zoo_foreign_config(config):
        if config.get("model_type") != "toy":
            return None
        return {"component": "model:toy-mlp", "config": {"size": config["vocab_size"]},
                "layout": None}
"""
RECOGNISES_TOY = """
    from zoo_core import hookimpl
    @hookimpl
    def zoo_foreign_config(config):
        if config.get("model_type") == "toy":
            return {"component": "model:toy-mlp", "config": {}, "layout": None}
"""


@pytest.fixture
def plugins(toy: str):
    """Register test plugins by name for one test; all unregistered afterwards."""
    names: list[str] = []

    def register(name: str, source: str) -> str:
        names.append(zoo.register_plugin(_module(name, source), name))
        return name

    yield register
    for name in reversed(names):
        zoo.unregister_plugin(name)


def test_a_bert_config_without_sizes_is_a_config_error_and_breaks_nothing(
        tmp_path: Path) -> None:
    """The issue's case: ``{"model_type": "bert"}`` made zoo-transformer broken for good."""
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    for _ in range(2):  # the second time too: nothing was marked broken by the first
        with pytest.raises(zoo.ConfigError, match="'vocab_size'") as caught:
            zoo.load(f"dir:{tmp_path}")
        assert "config.json" in str(caught.value)
        assert "no installed plugin recognises" not in str(caught.value)
    assert zoo.REGISTRY.reports["transformer"].status == "ok"
    assert zoo.REGISTRY.get("model:bert").plugin == "transformer"
    assert "all-minilm-l6-v2" in zoo.list()


@pytest.mark.parametrize("doc", [{"model_type": "bert", "vocab_size": "many"},
                                 {"model_type": "bert", "architectures": []},
                                 {"model_type": "bert", "architectures": 5}])
def test_odd_bert_configs_never_break_the_plugin(doc: dict) -> None:
    try:
        zoo.REGISTRY.foreign_config(doc, source="x/config.json")
    except zoo.ConfigError as e:
        assert "x/config.json" in str(e)
    assert zoo.REGISTRY.reports["transformer"].status == "ok"


def test_a_hook_failing_first_does_not_block_the_next_plugin(plugins) -> None:
    plugins("aaa-reads-vocab", READS_VOCAB)  # asked first, raises KeyError on this config
    plugins("zzz-recognises", RECOGNISES_TOY)
    found = zoo.REGISTRY.foreign_config({"model_type": "toy"})
    assert found == {"component": "model:toy-mlp", "config": {}, "layout": None}
    assert zoo.REGISTRY.reports["aaa-reads-vocab"].status == "ok"


def test_when_no_plugin_recognises_the_failure_names_file_field_and_plugin(plugins) -> None:
    plugins("aaa-reads-vocab", READS_VOCAB)
    with pytest.raises(zoo.ConfigError) as caught:
        zoo.REGISTRY.foreign_config({"model_type": "toy"}, source="/m/config.json")
    message = str(caught.value)
    assert "/m/config.json" in message and "'vocab_size'" in message
    assert "'aaa-reads-vocab'" in message
    assert zoo.REGISTRY.reports["aaa-reads-vocab"].status == "ok"
    assert zoo.REGISTRY.foreign_config({"model_type": "toy", "vocab_size": 3}) is not None


def test_a_garbage_answer_is_skipped_and_noted_not_fatal(plugins) -> None:
    plugins("aaa-liar", HEADER + "def zoo_foreign_config(config):\n    return 'bert'\n")
    plugins("zzz-recognises", RECOGNISES_TOY)
    assert zoo.REGISTRY.foreign_config({"model_type": "toy"})["component"] == "model:toy-mlp"
    report = zoo.REGISTRY.reports["aaa-liar"]
    assert report.status == "degraded"
    assert "zoo_foreign_config returned 'bert'" in report.problem


# -- guarded imports --------------------------------------------------------------------------

GOOD = HEADER + "def zoo_components():\n    return [component('loss:good', 'x:y')]\n"
EXITS = "import sys\nsys.exit(0)\n"
PRINTS = "print('hello from a plugin')\n" + GOOD.replace("loss:good", "loss:chatty")
SLOW = "import time\ntime.sleep(0.3)\n" + GOOD.replace("loss:good", "loss:slow")


@pytest.mark.parametrize("code", ["sys.exit(0)", "sys.exit(3)", "raise SystemExit"])
def test_sys_exit_at_import_breaks_only_that_plugin(tmp_path: Path, code: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    name = "exits" + "".join(c for c in code if c.isalnum())  # a module not imported yet
    monkeypatch.syspath_prepend(str(_install(tmp_path, {name: f"import sys\n{code}\n",
                                                        "good": GOOD})))
    monkeypatch.setenv("ZOO_PLUGINS", f"{name},good")
    reg = Registry()
    assert "loss:good" in reg.components()
    report = reg.reports[name]
    assert report.status == "broken" and "sys.exit(" in report.error


def test_cli_survives_a_plugin_that_exits_or_prints(tmp_path: Path) -> None:
    """`sys.exit(0)` at import ended `zoo list` silently with 0; a print broke `--json`."""
    _install(tmp_path, {"aaa": EXITS, "bbb": PRINTS, "good": GOOD})
    proc = _zoo(tmp_path, "aaa,bbb,good", "--json", "list")
    assert proc.returncode == 0, proc.stderr
    names = [row["name"] for row in json.loads(proc.stdout)]
    assert "loss:good" in names and "loss:chatty" in names
    assert "hello from a plugin" not in proc.stdout
    assert "plugin 'aaa' is broken: it called sys.exit(0)" in proc.stderr
    plugins = {p["name"]: p for p in json.loads(
        _zoo(tmp_path, "aaa,bbb,good", "--json", "plugins").stdout)}
    assert plugins["aaa"]["status"] == "broken"
    assert plugins["bbb"]["status"] == "degraded"
    assert "'hello from a plugin\\n' to stdout" in plugins["bbb"]["warnings"][0]
    assert plugins["good"]["status"] == "ok"


def test_a_slow_import_is_reported_and_fatal_when_strict(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    slow_too = SLOW.replace("loss:slow", "loss:slow-too")  # a module not imported yet
    monkeypatch.syspath_prepend(str(_install(tmp_path, {"slow": SLOW, "slowtoo": slow_too,
                                                        "good": GOOD})))
    monkeypatch.setenv("ZOO_PLUGINS", "slow,good")
    reg = Registry()
    reg.slow_import_s = 0.1  # the default is 2 s; the plugin sleeps 0.3 s
    assert {"loss:slow", "loss:good"} <= set(reg.components())
    assert reg.reports["slow"].status == "degraded"
    assert "its import took" in reg.reports["slow"].problem
    assert reg.reports["good"].status == "ok"
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    monkeypatch.setenv("ZOO_PLUGINS", "slowtoo,good")
    strict = Registry()
    strict.slow_import_s = 0.1
    with pytest.raises(zoo.PluginError, match="'slowtoo'.*its import took"):
        strict.components()


# -- catalogue names claimed twice ------------------------------------------------------------

CLAIMS_GPT2 = HEADER + """def zoo_catalog():
    return [{"name": "gpt2", "component": "model:toy-mlp"},
            {"name": "toy-own-entry", "component": "model:toy-mlp"}]
"""


def test_a_plugin_entry_named_like_a_shipped_one_is_refused_alone(plugins) -> None:
    with pytest.warns(UserWarning, match="'gpt2' refused: registry.toml"):
        plugins("claims", CLAIMS_GPT2)
    zoo.CATALOG.invalidate()
    assert zoo.CATALOG.get("gpt2").component == "tokenizer:bpe"  # the first one wins
    assert zoo.CATALOG.get("toy-own-entry").origin == "plugin 'claims'"
    assert "gpt2" in zoo.list() and "bert-base-uncased" in zoo.list()
    assert zoo.REGISTRY.reports["claims"].status == "degraded"


def test_two_plugins_claiming_one_entry_name(plugins) -> None:
    entry = "def zoo_catalog():\n    return [{'name': 'shared-name', 'component': 'model:x'}]\n"
    plugins("first", HEADER + entry)
    with pytest.warns(UserWarning, match="'shared-name' refused: plugin 'first'"):
        plugins("second", HEADER + entry)
    zoo.CATALOG.invalidate()
    assert zoo.CATALOG.get("shared-name").origin == "plugin 'first'"


def test_cli_survives_an_entry_claimed_twice(tmp_path: Path) -> None:
    """It made every `zoo list`, `run` and `load` fail while `zoo plugins` said ok."""
    body = CLAIMS_GPT2.replace("model:toy-mlp", "loss:x")
    _install(tmp_path, {"aaa": body})
    listed = _zoo(tmp_path, "aaa,tokenizers", "--json", "list")
    assert listed.returncode == 0, listed.stderr
    assert {"gpt2", "toy-own-entry"} <= {row["name"] for row in json.loads(listed.stdout)}
    ran = _zoo(tmp_path, "aaa,tokenizers", "--json", "run", "gpt2", "hello world")
    assert ran.returncode == 0, ran.stderr
    assert [t["id"] for t in json.loads(ran.stdout)["tokens"][0]] == [31373, 995]  # tiktoken
    shown = _zoo(tmp_path, "aaa,tokenizers", "plugins")
    assert "gpt2" in shown.stdout and "registry.toml" in shown.stdout
    report = {p["name"]: p for p in json.loads(
        _zoo(tmp_path, "aaa,tokenizers", "--json", "plugins").stdout)}["aaa"]
    assert report["status"] == "degraded"
