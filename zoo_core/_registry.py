"""The component registry: pluggy over the ``zoo`` entry-point group, loaded lazily.

A plugin's entry module is light: it names its components by import string, so listing them
imports no torch. ``Component.load()`` imports the target when a user creates one.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from . import _hookspecs
from ._errors import PluginError, close_matches, unknown

KINDS = ("model", "tokenizer", "loss", "metric", "kernel", "transform")


@dataclass(frozen=True)
class Component:
    """A factory of one kind, addressed as ``kind:name``, contributed by a plugin.

    ``target`` is an import string ``"package.module:attr"``; nothing is imported until
    :meth:`load` is called.
    """

    kind: str
    name: str
    target: str
    summary: str = ""
    tags: tuple[str, ...] = ()
    paper: str = ""
    plugin: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.name}"

    def load(self) -> Any:
        """Import and return the factory (a class or function)."""
        module_name, _, attr = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise PluginError(
                f"component {self.ref!r} of plugin {self.plugin!r} points at {self.target!r}, "
                f"which cannot be imported: {e}. Reinstall the plugin or fix its registration."
            ) from e
        return obj


def component(
    ref: str, target: str, *, summary: str = "", tags: tuple[str, ...] | list[str] = (),
    paper: str = "",
) -> Component:
    """Declare a component for a plugin's ``zoo_components`` hook.

    Example:
        >>> component("loss:arcface", "zoo_face.losses:ArcFace", summary="additive angular margin")
    """
    kind, sep, name = ref.partition(":")
    if not sep or not name:
        raise PluginError(f"component reference {ref!r} must read 'kind:name', e.g. 'model:bert'")
    if kind not in KINDS:
        raise PluginError(f"component {ref!r} has unknown kind {kind!r}; valid kinds: {KINDS}")
    if ":" not in target:
        raise PluginError(f"component {ref!r}: target {target!r} must read 'module:attribute'")
    return Component(kind, name, target, summary, tuple(tags), paper)


@dataclass
class PluginReport:
    """What ``zoo plugins`` shows about one plugin."""

    name: str
    distribution: str = ""
    version: str = ""
    status: str = "ok"  # ok | broken | disabled
    error: str = ""
    components: list[str] = field(default_factory=list)


def _truthy(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


class Registry:
    """Plugins, their components, catalogue entries and task runners."""

    def __init__(self, autoload: bool = True) -> None:
        self.pm = pluggy.PluginManager(_hookspecs.PROJECT)
        self.pm.add_hookspecs(_hookspecs)
        self._autoload = autoload
        self._loaded = False
        self._components: dict[str, Component] = {}
        self.reports: dict[str, PluginReport] = {}

    # -- loading -------------------------------------------------------------------------
    def _ensure(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._autoload and not _truthy("ZOO_DISABLE_PLUGIN_AUTOLOAD"):
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        wanted = {w.strip() for w in os.environ.get("ZOO_PLUGINS", "").split(",") if w.strip()}
        for ep in sorted(md.entry_points(group="zoo"), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else ""
            version = ep.dist.version if ep.dist else ""
            if ep.name in self.reports:
                continue
            if wanted and not wanted & {ep.name, dist}:
                self.reports[ep.name] = PluginReport(ep.name, dist, version, "disabled",
                                                     "not named in ZOO_PLUGINS")
                continue
            try:
                module = ep.load()
                self._register(module, ep.name, dist, version)
            except Exception as e:  # a broken plugin must not take the others down
                self.pm.unregister(name=ep.name) if self.pm.has_plugin(ep.name) else None
                self.reports[ep.name] = PluginReport(ep.name, dist, version, "broken",
                                                     f"{type(e).__name__}: {e}")
                if _truthy("ZOO_STRICT_PLUGINS"):
                    raise PluginError(f"plugin {ep.name!r} ({dist}) failed to load: {e}") from e

    def register_plugin(self, plugin: ModuleType | object, name: str | None = None) -> str:
        """Register a plugin object (usually its entry module) without an installed entry point.

        Errors are raised, not recorded: explicit registration is a programming act.
        """
        self._ensure()
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if name in self.reports and self.reports[name].status == "ok":
            raise PluginError(f"a plugin named {name!r} is already registered")
        dist = getattr(plugin, "__package__", "") or ""
        self._register(plugin, name, dist, "")
        return name

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin and its components (tests register plugins in a fixture)."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.reports.pop(name, None)
        self._components = {r: c for r, c in self._components.items() if c.plugin != name}

    def _register(self, plugin: object, name: str, dist: str, version: str) -> None:
        _check_hook_names(plugin, name)
        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
            found = self._collect_components(plugin, name)
        except Exception:
            self.pm.unregister(name=name)
            raise
        self._components.update({c.ref: c for c in found})
        self.reports[name] = PluginReport(name, dist, version, "ok", "", [c.ref for c in found])

    def _collect_components(self, plugin: object, name: str) -> list[Component]:
        impl = getattr(plugin, "zoo_components", None)
        found: list[Component] = []
        specs: list[Any] = list(impl()) if impl else []
        for spec in specs:
            if not isinstance(spec, Component):
                raise PluginError(f"plugin {name!r} returned {spec!r} from zoo_components; "
                                  "return zoo_core.component(...) specs")
            spec = Component(**{**spec.__dict__, "plugin": name})
            other = self._components.get(spec.ref)
            if other is not None or spec.ref in {c.ref for c in found}:
                owner = other.plugin if other else name
                raise PluginError(
                    f"component {spec.ref!r} is registered twice: by plugin {owner!r} and by "
                    f"plugin {name!r}; uninstall one, or restrict loading with ZOO_PLUGINS"
                )
            found.append(spec)
        return found

    # -- queries -------------------------------------------------------------------------
    def components(self) -> dict[str, Component]:
        self._ensure()
        return dict(self._components)

    def get(self, ref: str) -> Component:
        """The component ``kind:name``; an unknown one raises with the closest names."""
        comps = self.components()
        if ref in comps:
            return comps[ref]
        raise unknown("component", ref, comps, hint="Components are addressed as 'kind:name'.")

    def catalog_entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(plugin name, raw entry) for each entry a plugin contributes."""
        self._ensure()
        for impl in self.pm.hook.zoo_catalog.get_hookimpls():
            raws = impl.function() or []
            for raw in raws:  # type: ignore[attr-defined]
                yield impl.plugin_name, raw

    def task_runners(self) -> dict[str, str]:
        self._ensure()
        runners: dict[str, str] = {}
        for mapping in self.pm.hook.zoo_task_runners():
            runners.update(mapping or {})
        return runners

    def foreign_config(self, config: dict[str, Any]) -> dict[str, Any] | None:
        self._ensure()
        result: dict[str, Any] | None = self.pm.hook.zoo_foreign_config(config=config)
        return result


_HOOKS = {n for n in dir(_hookspecs) if n.startswith("zoo_")}


def _check_hook_names(plugin: object, name: str) -> None:
    """A misspelled hook would silently never run: refuse any ``zoo_*`` name that is no hook."""
    for attr in dir(plugin):
        if attr.startswith("zoo_") and attr not in _HOOKS and callable(getattr(plugin, attr)):
            near = close_matches(attr, _HOOKS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise PluginError(
                f"plugin {name!r} defines {attr!r}, which is not a zoo hook{hint} "
                f"Valid hooks: {', '.join(sorted(_HOOKS))}."
            )


REGISTRY = Registry()
hookimpl = _hookspecs.hookimpl
