"""`zoo.task(entry)`, the Python twin of `zoo run`: errors, and the tables drawn from its data."""

from __future__ import annotations

import pytest

import zoo_core as zoo
from zoo_core._tasks import as_data, table


def test_an_entry_without_a_task_says_so() -> None:
    with pytest.raises(zoo.InputError, match="entry 'roberta-base' has no task"):
        zoo.task("roberta-base")


def test_inputs_must_be_texts() -> None:
    similar = zoo.task("all-minilm-l6-v2")
    assert repr(similar) == "Task('sentence-similarity', entry='all-minilm-l6-v2')"
    with pytest.raises(zoo.InputError, match=r"\[1, 2\]"):
        similar([1, 2])  # type: ignore[list-item]


def test_one_text_is_a_list_of_one() -> None:
    out = zoo.task("gpt2")("hello world")
    assert out["inputs"] == ["hello world"] and len(out["tokens"]) == 1
    assert [t["id"] for t in out["tokens"][0]] == [31373, 995]  # tiktoken's gpt2 ids


def test_tables_are_drawn_from_the_data() -> None:
    fill = {"task": "fill-mask", "entry": "e", "inputs": ["a [MASK] b"],
            "predictions": [{"input": 0, "position": 2, "candidates": [
                {"token": "x", "id": 7, "score": 0.5}, {"token": "y", "id": 8, "score": 0.25}]}]}
    title, columns, rows = table(fill)
    assert title == "fill-mask (e)" and columns[-1] == "score"
    assert rows == [["a [MASK] b", 2, 1, "x", "0.5000"], ["a [MASK] b", 2, 2, "y", "0.2500"]]
    sim = {"task": "sentence-similarity", "entry": "e", "inputs": ["a", "b"],
           "similarity": [[1.0, 0.5], [0.5, 1.0]]}
    assert table(sim)[2] == [["[0] a", "1.0000", "0.5000"], ["[1] b", "0.5000", "1.0000"]]
    legacy = {"task": "t", "entry": "e", "inputs": ["a"], "title": "T", "columns": ["k", "v"],
              "rows": [["a", 1]]}
    assert table(legacy) == ("T", ["k", "v"], [["a", 1]])
    assert as_data(legacy) == {"task": "t", "entry": "e", "inputs": ["a"],
                               "rows": [{"k": "a", "v": 1}]}


# -- tasks are registered by the plugin that runs them ---------------------------------------

LINES = """
from zoo_core import hookimpl
@hookimpl
def zoo_catalog():
    return [{"name": "toy-lines", "component": "model:toy-mlp", "task": "count-lines"}]
@hookimpl
def zoo_task_runners():
    return {"count-lines": {
        "runner": "tests.test_tasks:count_lines", "render": "tests.test_tasks:lines_table",
        "schema": {"type": "object", "properties": {"lines": {"type": "array",
                                                              "items": {"type": "integer"}}}}}}
"""


def count_lines(entry: str, inputs: list[str]) -> dict:
    return {"lines": [len(text.splitlines()) for text in inputs]}


def lines_table(result: dict) -> tuple:
    return "lines", ["text", "lines"], [[t, n] for t, n in zip(result["inputs"],
                                                                  result["lines"], strict=True)]


def test_a_plugin_registers_runner_schema_and_renderer(toy: str, capsys) -> None:
    from tests.test_registry import _module
    from zoo_core.cli import main

    zoo.register_plugin(_module("lines", LINES), "lines")
    zoo.CATALOG.invalidate()
    try:
        result = zoo.task("toy-lines")(["a\nb", "c"])
        assert result["lines"] == [2, 1]
        assert table(result) == ("lines", ["text", "lines"], [["a\nb", 2], ["c", 1]])
        assert zoo.REGISTRY.tasks()["count-lines"].schema["properties"]["lines"]["type"] == \
            "array"
        assert main(["run", "toy-lines", "x"]) == 0
        assert capsys.readouterr().out == "x\t1\n"
    finally:
        zoo.unregister_plugin("lines")
        zoo.CATALOG.invalidate()


def test_the_core_knows_only_the_tasks_installed_plugins_serve(tmp_path) -> None:
    from tests.test_cli import zoo_cli

    shown = zoo_cli(tmp_path, "run", "--help", ZOO_PLUGINS="tokenizers").stdout
    words = " ".join(shown.split())
    assert 'tokenize inputs: TEXT [TEXT ...]' in words
    assert '--json: {"tokens": [[{"token": string, "id": integer' in words
    assert "similarity" not in shown and "predictions" not in shown
    full = " ".join(zoo_cli(tmp_path, "run", "--help").stdout.split())
    assert 'sentence-similarity inputs: TEXT TEXT' in full
    assert '--json: {"similarity": [[number]]}' in full
    assert '--json: {"faces": [{"image": string' in full
