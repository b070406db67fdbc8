"""The hooks a zoo plugin implements. Every hook is optional; all run without importing torch."""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "zoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def zoo_components() -> list[Any]:
    """Return the components this plugin contributes, as ``zoo_core.component(...)`` specs."""
    raise NotImplementedError


@hookspec
def zoo_catalog() -> list[dict[str, Any]]:
    """Return catalogue entries (dicts shaped like a ``registry.toml`` entry, with ``name``)."""
    raise NotImplementedError


@hookspec
def zoo_task_runners() -> dict[str, str]:
    """Map a task name to ``"module:function"``; ``function(entry_name, inputs)`` returns the
    task's fields as plain data (schemas in ``zoo_core._tasks``) for ``zoo run``/``zoo.task``."""
    raise NotImplementedError


@hookspec
def zoo_converters() -> dict[str, str]:
    """Map a weight format (a catalogue ``convert.<file>.format``) to ``"module:function"``;
    ``function(path)`` reads the file and returns a dict of tensors (imported on first use)."""
    raise NotImplementedError


@hookspec(firstresult=True)
def zoo_foreign_config(config: dict[str, Any]) -> dict[str, Any] | None:
    """Recognise a ``config.json`` not written by zoo; return ``{component, config, layout}``."""


@hookspec
def zoo_expected_failures() -> dict[str, str]:
    """Map contract cases expected to fail (``"kind:name::check"``, ``"kind:name[preset]::check"``
    or a check name) to the reason; the kit marks them strict xfail, so a fix must remove them."""
    raise NotImplementedError
