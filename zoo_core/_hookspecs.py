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
def zoo_task_runners() -> dict[str, str | dict[str, Any]]:
    """Map a task name to ``"module:function"``, or to ``{"runner": "module:function",
    "schema": {JSON schema of its fields}, "render": "module:function"}``: ``runner(entry_name,
    inputs)`` returns the fields as plain data, ``render(result)`` the ``(title, columns,
    rows)`` ``zoo run`` shows (see ``zoo_core._tasks``)."""
    raise NotImplementedError


@hookspec(firstresult=True)
def zoo_foreign_config(config: dict[str, Any]) -> dict[str, Any] | None:
    """Recognise a ``config.json`` not written by zoo; return ``{component, config, layout}``."""


@hookspec
def zoo_expected_failures() -> dict[str, str]:
    """Map contract cases expected to fail (``"kind:name::check"``, ``"kind:name[preset]::check"``
    or a check name) to the reason; the kit marks them strict xfail, so a fix must remove them."""
    raise NotImplementedError
