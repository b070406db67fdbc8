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
