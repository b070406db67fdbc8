"""Tasks: what ``zoo run ENTRY INPUT…`` and its Python twin ``zoo.task(ENTRY)(inputs)`` do.

An entry names its ``task``; the plugin that serves the task registers it through the
``zoo_task_runners`` hook: ``{"task-name": {"runner": "module:function", "schema": {...},
"render": "module:function"}}`` (a bare ``"module:function"`` registers the runner alone).
The runner is called as ``runner(entry_name, inputs)`` and returns the task's fields as plain
data (numbers as numbers, lists as lists), described by ``schema``, a JSON schema. The core
adds ``task``, ``entry`` and ``inputs``, so every result reads ``{"task": str, "entry": str,
"inputs": [str, ...], ...fields}``. ``zoo run --json`` prints exactly that dict; the table
``zoo run`` shows is ``render(result) -> (title, columns, rows)``. Without a renderer, a result
shaped ``{"columns": [...], "rows": [[...]]}`` is shown as that table (and printed by
``--json`` as one dict per row), any other as its fields. ``zoo run --help`` lists each served
task with its entries and schema.
A task registers what it takes too (``usage``, ``at_least``, ``options``): fewer inputs than
it needs is a :class:`~zoo_core.UsageError` (``zoo run`` exits 2).

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
from ._errors import InputError, UsageError, unknown
from ._registry import REGISTRY


def schemas() -> dict[str, dict[str, Any]]:
    """The JSON schema of each served task's fields, as its plugin registered it."""
    return {t: dict(spec.schema) for t, spec in sorted(REGISTRY.tasks().items())}


def _imported(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _positional(inputs: list[str], options: tuple[str, ...]) -> int:
    """How many inputs are not options nor an option's value."""
    count, skip = 0, False
    for text in inputs:
        if skip:
            skip = False
        elif text in options:
            skip = True
        elif not text.startswith(tuple(f"{o}=" for o in options)) or not options:
            count += 1
    return count


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
        spec = REGISTRY.tasks().get(self.name)
        if spec is not None and _positional(texts, spec.options) < spec.at_least:
            takes = spec.usage or f"{spec.at_least} inputs or more"
            raise UsageError(f"too few inputs for task {self.name!r}: {texts!r}; usage: zoo run "
                             f"{self.entry.name} {takes}")
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
    if entry_name.startswith(("hf:", "dir:")):  # a folder written by zoo.save or zoo.push
        from ._api import ref_entry

        entry = ref_entry(entry_name)
    else:
        entry = CATALOG.get(entry_name)
    REGISTRY.get(entry.component)  # not installed: says which plugin serves the entry
    runners = REGISTRY.task_runners()
    if not entry.task:
        raise InputError(f"entry {entry.name!r} has no task, so `zoo run` cannot run it "
                         f"({entry.summary}); `zoo run --help` lists the entries with a task")
    if entry.task not in runners:
        raise unknown(f"task runner for entry {entry.name!r} (task)", entry.task or "''",
                      runners, hint="Install the plugin that provides this task.")
    return Task(entry, _imported(runners[entry.task]))


def table(result: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
    """``(title, columns, rows)`` showing a task result to people."""
    spec = REGISTRY.tasks().get(result.get("task", ""))
    if spec is not None and spec.render:
        title, columns, rows = _imported(spec.render)(result)
        return title, list(columns), [list(r) for r in rows]
    title = f"{result.get('task', '')} ({result.get('entry', '')})"
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
