"""Tasks: what ``zoo run ENTRY INPUT…`` and its Python twin ``zoo.task(ENTRY)(inputs)`` do.

An entry names its ``task``; the plugin that serves the task registers a runner through the
``zoo_task_runners`` hook (``{"task-name": "module:function"}``). A runner is called as
``function(entry_name, inputs)`` and returns the task's fields below as plain data (numbers as
numbers, lists as lists). The core adds ``task``, ``entry`` and ``inputs``, so every result
reads ``{"task": str, "entry": str, "inputs": [str, ...], ...fields}``. ``zoo run --json``
prints exactly that dict; the table ``zoo run`` shows is rendered from it.

Schemas (version 1):

``sentence-similarity``
    ``similarity``: ``[[float]]``, the (N, N) cosine similarities of the N inputs.
``fill-mask``
    ``predictions``: one ``{"input": int, "position": int, "candidates": [{"token": str,
    "id": int, "score": float}, ...]}`` per mask token, ``input`` indexing ``inputs``,
    ``position`` the token position, candidates best first.
``tokenize``
    ``tokens``: per input, a list of ``{"token": str, "id": int, "start": int, "end": int}``
    (character offsets in the input).
``text-generation``
    ``columns``: ``["prompt", "generated_text", "new_tokens"]`` and ``rows``: one
    ``[str, str, int]`` per input, the prompt continued greedily.

A runner of another task may return any JSON-ready dict; one shaped ``{"columns": [...],
"rows": [[...]]}`` is shown as that table and printed by ``--json`` as one dict per row.

Example:
    >>> similar = zoo.task("all-minilm-l6-v2")
    >>> similar(["A man is eating food.", "A man is eating pasta."])["similarity"][0][1]
    0.7...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from ._catalog import CATALOG, Entry
from ._errors import InputError, unknown
from ._registry import REGISTRY

SCHEMA_VERSION = 1
#: The fields each task adds to ``{"task", "entry", "inputs"}`` (details in this module's doc).
SCHEMAS = {
    "sentence-similarity": '"similarity": [[float]] (N x N cosine similarities)',
    "fill-mask": '"predictions": [{"input": int, "position": int, "candidates": '
                 '[{"token": str, "id": int, "score": float}]}]',
    "tokenize": '"tokens": [[{"token": str, "id": int, "start": int, "end": int}]] per input',
    "text-generation": '"columns": ["prompt", "generated_text", "new_tokens"], '
                       '"rows": [[str, str, int]] (one row per input)',
}


class Task:
    """A catalogue entry bound to its task runner: call it on a list of inputs (or one)."""

    def __init__(self, entry: Entry, runner: Callable[..., Any]) -> None:
        self.entry = entry
        self.name = entry.task
        self._runner = runner

    def __repr__(self) -> str:
        return f"Task({self.name!r}, entry={self.entry.name!r})"

    def __call__(self, inputs: str | Sequence[str]) -> dict[str, Any]:
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not all(isinstance(t, str) for t in texts):
            raise InputError(f"task {self.name!r} takes text inputs, got {inputs!r}")
        fields = self._runner(self.entry.name, texts)
        if not isinstance(fields, dict):
            raise InputError(f"the {self.name!r} runner returned {type(fields).__name__}, "
                             "not a dict; see zoo_core._tasks for the result schema")
        return {"task": self.name, "entry": self.entry.name, "inputs": texts, **fields}


def task(entry_name: str) -> Task:
    """The ``pipeline()`` of zoo: a callable running ``entry_name``'s task.

    Its result is the data ``zoo run ENTRY … --json`` prints (schemas in this module's doc).

    Example:
        >>> zoo.task("bert-base-uncased")("Hello world")["tokens"][0][0]
        {'token': '[CLS]', 'id': 101, 'start': 0, 'end': 0}
    """
    entry = CATALOG.get(entry_name)
    runners = REGISTRY.task_runners()
    if entry.task not in runners:
        raise unknown(f"task runner for entry {entry.name!r} (task)", entry.task or "''",
                      runners, hint="Install the plugin that provides this task.")
    module, _, fn = runners[entry.task].partition(":")
    return Task(entry, getattr(importlib.import_module(module), fn))


def table(result: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
    """``(title, columns, rows)`` showing a task result to people."""
    title = f"{result.get('task', '')} ({result.get('entry', '')})"
    inputs = result.get("inputs", [])
    rows: list[list[Any]]
    if "similarity" in result:
        labels = [f"[{i}] {t}" for i, t in enumerate(inputs)]
        rows = [[labels[i], *[f"{s:.4f}" for s in row]]
                for i, row in enumerate(result["similarity"])]
        return title, ["sentence", *[f"[{i}]" for i in range(len(inputs))]], rows
    if "predictions" in result:
        rows = [[inputs[p["input"]], p["position"], rank, c["token"], f"{c['score']:.4f}"]
                for p in result["predictions"]
                for rank, c in enumerate(p["candidates"], 1)]
        return title, ["input", "position", "rank", "token", "score"], rows
    if "tokens" in result:
        rows = [[text, t["token"], t["id"], t["start"], t["end"]]
                for text, toks in zip(inputs, result["tokens"], strict=True) for t in toks]
        return title, ["text", "token", "id", "start", "end"], rows
    if "columns" in result and "rows" in result:
        return result.get("title", title), list(result["columns"]), list(result["rows"])
    skip = {"task", "entry", "inputs"}
    return title, ["field", "value"], [[k, v] for k, v in result.items() if k not in skip]


def as_data(result: dict[str, Any]) -> Any:
    """What ``--json`` prints: the result, with a bare table turned into one dict per row."""
    if "columns" in result and "rows" in result and "title" in result:
        cols = [str(c) for c in result["columns"]]
        rows = [dict(zip(cols, r, strict=True)) for r in result["rows"]]
        skip = {"columns", "rows", "title"}
        return {**{k: v for k, v in result.items() if k not in skip}, "rows": rows}
    return result
