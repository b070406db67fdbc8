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
    """Contract cases of this plugin known to fail, each mapped to the reason.

    A key is a case id, ``"kind:name::check"`` (``"loss:arcface::compiles"``) or, for a
    model's preset, ``"kind:name[preset]::preset"``; ``"kind:name::preset"`` covers every
    preset of the component and a bare check name (``"compiles"``) every component of the
    plugin. The reason says why the case fails and what would fix it.

    The cases run anyway and are strict: pytest marks them ``xfail(strict=True)`` and
    ``zoo check`` reports ``xfailed``; a declared case that passes is ``xpassed`` and fails
    the run (``zoo check`` exits 1), so a fix must remove its entry. Use it for a known bug or
    limitation of a component; a check that does not apply to a component is not a failure:
    the component's class opts out of it instead (``contract_opt_outs = {check: reason}``).

    Example::

        @hookimpl
        def zoo_expected_failures():
            return {"loss:partial-fc::compiles": "samples the negative centres with "
                    "torch.unique, whose output size depends on the labels"}
    """
    raise NotImplementedError
