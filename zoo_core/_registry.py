"""The component registry: pluggy over the ``zoo`` entry-point group, loaded lazily.

A plugin's entry module is light: it names its components by import string, so listing them
imports no torch. ``Component.load()`` imports the target when a user creates one.

Isolation is per contribution. Installed plugins load in entry-point name order, then the
explicitly registered ones in call order; the first to register a ``kind:name``, a catalogue
entry name (``registry.toml`` comes before every plugin) or a task wins, and a later duplicate
is refused alone (the plugin's report names both). Loading is guarded: an exception or
``SystemExit`` while a plugin imports or registers marks it broken; output on stdout is
dropped and an import slower than ``Registry.slow_import_s`` is reported (the plugin is
degraded). Every hook's result is type-checked per plugin: a plugin whose hook raises or
returns garbage while it registers is broken and contributes nothing, while the others keep
working. A plugin is never marked broken afterwards: ``zoo_foreign_config`` reads user data,
and its failure on a config is a ``ConfigError`` about that config. ``ZOO_STRICT_PLUGINS=1``
turns any problem into a ``PluginError`` and leaves the registry as it was (a later call
loads, and raises, again).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata as md
import io
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from . import _hookspecs
from ._catalog import shipped_entry_names
from ._errors import ConfigError, PluginError, ZooError, close_matches, unknown

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
    """What ``zoo plugins`` shows about one plugin.

    ``status`` is ``ok``; ``degraded`` (loaded, with ``warnings``: a refused duplicate, an
    entry module that imports torch); ``broken`` (contributes nothing; ``error`` says why);
    or ``disabled`` (not named in ``ZOO_PLUGINS``).
    """

    name: str
    distribution: str = ""
    version: str = ""
    status: str = "ok"
    error: str = ""
    components: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    imports_torch: bool = False

    @property
    def problem(self) -> str:
        """One line saying what is wrong with the plugin, or ``""``."""
        if self.status == "broken":
            text = f"plugin {self.name!r} is broken: {self.error}"
        elif self.warnings:
            text = f"plugin {self.name!r}: " + "; ".join(self.warnings)
        else:
            return ""
        return " ".join(text.split())

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self.status == "ok":
            self.status = "degraded"


class PluginWarning(UserWarning):
    """A contribution of an explicitly registered plugin was refused (see its report)."""


@dataclass(frozen=True)
class TaskSpec:
    """What a plugin registers for a task: its runner, the JSON schema of the fields the runner
    returns, the renderer of a result as a table (import strings ``module:function``), and what
    it takes: ``usage`` (shown by ``zoo run --help``), ``at_least`` inputs, and the ``options``
    that take a value (``--out``)."""

    runner: str
    schema: Mapping[str, Any] = field(default_factory=dict)
    render: str = ""
    usage: str = ""
    at_least: int = 1
    options: tuple[str, ...] = ()


@dataclass
class _Contribution:
    """A plugin's admitted catalogue entries and task runners."""

    catalog: list[dict[str, Any]] = field(default_factory=list)
    runners: dict[str, TaskSpec] = field(default_factory=dict)
    expected_failures: dict[str, str] = field(default_factory=dict)


def _truthy(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


_STRICT = "ZOO_STRICT_PLUGINS"
_TORCH_WARNING = ("its entry module imports torch, which makes `zoo list` slow: import torch "
                  "only in the modules that components point at")


class Registry:
    """Plugins, their components, catalogue entries and task runners."""

    slow_import_s = 2.0
    """An installed plugin taking longer to import and register is reported as degraded."""

    def __init__(self, autoload: bool = True) -> None:
        self.pm = pluggy.PluginManager(_hookspecs.PROJECT)
        self.pm.add_hookspecs(_hookspecs)
        self._autoload = autoload
        self._loaded = False
        self._components: dict[str, Component] = {}
        self._contributions: dict[str, _Contribution] = {}
        self.reports: dict[str, PluginReport] = {}

    # -- loading -------------------------------------------------------------------------
    def _ensure(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._autoload and not _truthy("ZOO_DISABLE_PLUGIN_AUTOLOAD"):
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        """Load installed plugins in entry-point name order; strict mode is all or nothing."""
        strict = _truthy(_STRICT)
        saved = self._snapshot()
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
            self._admit(ep.name, dist, version, ep.load)
            report = self.reports[ep.name]
            if strict and report.problem:
                self._restore(saved)
                raise PluginError(f"{report.problem} ({_STRICT}=1 makes every plugin problem "
                                  "fatal; unset it to load the other plugins)")

    def _admit(self, name: str, dist: str, version: str, load: Callable[[], object]) -> None:
        """Import and register one installed plugin, guarded: an exception, ``SystemExit``,
        output on stdout or an import slower than ``slow_import_s`` is reported for this
        plugin alone (stdout stays clean for ``zoo list --json``)."""
        had_torch = "torch" in sys.modules
        start = time.perf_counter()
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                self._register(load(), name, dist, version)
        except (Exception, SystemExit) as e:  # a broken plugin must not take the others down
            self._forget(name)
            reason = (f"it called sys.exit({e.code!r}) while loading" if isinstance(e, SystemExit)
                      else f"{type(e).__name__}: {e}")
            self.reports[name] = PluginReport(name, dist, version, "broken", reason)
        report = self.reports[name]
        seconds = time.perf_counter() - start
        if not had_torch and "torch" in sys.modules:  # the slowness, named
            report.imports_torch = True
            report.warn(_TORCH_WARNING)
        elif seconds > self.slow_import_s:
            report.warn(f"its import took {seconds:.1f} s (more than {self.slow_import_s:g} s "
                        "slows every command): import heavy modules only in the modules that "
                        "components point at")
        if captured.getvalue():
            report.warn(f"it wrote {_short(captured.getvalue())} to stdout while loading "
                        "(dropped: stdout is the commands' data); log to stderr instead")

    def _snapshot(self) -> tuple[Any, ...]:
        names = {n for n, _ in self.pm.list_name_plugin()}
        return dict(self._components), dict(self._contributions), dict(self.reports), names

    def _restore(self, saved: tuple[Any, ...]) -> None:
        """Back to a snapshot, and loaded again on next use."""
        self._components, self._contributions, self.reports, names = saved
        for name, _ in self.pm.list_name_plugin():
            if name not in names:
                self.pm.unregister(name=name)
        self._loaded = False

    def register_plugin(self, plugin: ModuleType | object, name: str | None = None) -> str:
        """Register a plugin object (usually its entry module) without an installed entry point.

        A plugin that cannot register raises ``PluginError`` and leaves the registry as it
        was: explicit registration is a programming act. A refused duplicate contribution
        warns (``PluginWarning``, also in the plugin's report) and the rest registers; under
        ``ZOO_STRICT_PLUGINS=1`` it raises and registers nothing.
        """
        self._ensure()
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if self.pm.has_plugin(name):
            raise PluginError(f"a plugin named {name!r} is already registered")
        dist = getattr(plugin, "__package__", "") or ""
        had_torch = "torch" in sys.modules
        self._register(plugin, name, dist, "")
        report = self.reports[name]
        if not had_torch and "torch" in sys.modules:
            report.imports_torch = True
            report.warn(_TORCH_WARNING)
        if report.problem:
            if _truthy(_STRICT):
                self.unregister_plugin(name)
                raise PluginError(report.problem)
            warnings.warn(report.problem, PluginWarning, stacklevel=3)
        return name

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin and its contributions (tests register plugins in a fixture)."""
        self._forget(name)
        self.reports.pop(name, None)

    def _forget(self, name: str) -> None:
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self._contributions.pop(name, None)
        self._components = {r: c for r, c in self._components.items() if c.plugin != name}

    def _register(self, plugin: object, name: str, dist: str, version: str) -> None:
        """Register ``plugin`` and admit its contributions; if it cannot register, raise and
        leave nothing behind."""
        _check_hook_names(plugin, name)
        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
            components = self._call(name, "zoo_components", _components_of)
            catalog = self._call(name, "zoo_catalog", _catalog_of)
            runners = self._call(name, "zoo_task_runners", _runners_of)
            expected = self._call(name, "zoo_expected_failures", _reasons_of)
        except Exception:
            self.pm.unregister(name=name)
            raise
        report = PluginReport(name, dist, version)
        for comp in components:
            other = self._components.get(comp.ref)
            if other is None:
                self._components[comp.ref] = comp
                report.components.append(comp.ref)
            else:
                report.warn(_refusal("component", comp.ref, other.plugin, name))
        contribution = _Contribution(expected_failures=expected)
        entries = {e["name"]: p for p, c in self._contributions.items() for e in c.catalog}
        shipped = shipped_entry_names() if catalog else frozenset()
        for raw in catalog:
            if raw["name"] in shipped:
                report.warn(f"catalogue entry {raw['name']!r} refused: registry.toml, the "
                            "catalogue shipped with zoo-core, defines it; rename the plugin's "
                            "entry")
            elif raw["name"] in entries:
                report.warn(_refusal("catalogue entry", raw["name"], entries[raw["name"]], name))
            else:
                entries[raw["name"]] = name
                contribution.catalog.append(raw)
        tasks = {t: p for p, c in self._contributions.items() for t in c.runners}
        for task, target in runners.items():
            if task in tasks:
                report.warn(_refusal("task runner", task, tasks[task], name))
            else:
                contribution.runners[task] = target
        self._contributions[name] = contribution
        self.reports[name] = report

    def _call(self, plugin: str, hook: str, check: Callable[[Any, str], Any]) -> Any:
        """Call one plugin's implementation of a no-argument hook and validate its result."""
        impls = [i for i in getattr(self.pm.hook, hook).get_hookimpls()
                 if i.plugin_name == plugin]
        try:
            return check(impls[0].function() if impls else None, plugin)
        except PluginError:
            raise
        except Exception as e:
            raise PluginError(f"plugin {plugin!r}: {hook} failed: {type(e).__name__}: {e}") from e

    # -- queries -------------------------------------------------------------------------
    def components(self) -> dict[str, Component]:
        self._ensure()
        return dict(self._components)

    def get(self, ref: str) -> Component:
        """The component ``kind:name``; an unknown one raises with the closest names."""
        comps = self.components()
        if ref in comps:
            return comps[ref]
        raise unknown("component", ref, comps, hint=self._missing_plugin(ref)
                      or "Components are addressed as 'kind:name'.")

    def _missing_plugin(self, ref: str) -> str:
        """How to get ``ref`` when a catalogue entry names the plugin serving it."""
        from ._catalog import CATALOG

        try:
            plugins = sorted({e.plugin for e in CATALOG.entries().values()
                              if e.component == ref and e.plugin})
        except ZooError:  # a broken user catalogue is reported where it is read
            return ""
        if not plugins:
            return ""
        report = next((r for r in self.reports.values()
                       if plugins[0] in (r.distribution, r.name)), None)
        state = (f"installed but {report.status} (see `zoo plugins`)" if report
                 else f"not installed: pip install {plugins[0]}")
        return f"Component {ref!r} is served by plugin {plugins[0]!r}, {state}."

    def catalog_entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(plugin name, raw entry) for each entry a plugin contributes."""
        self._ensure()
        for plugin, contribution in list(self._contributions.items()):
            for raw in contribution.catalog:
                yield plugin, dict(raw)

    def task_runners(self) -> dict[str, str]:
        """``{task: "module:function"}`` of every served task."""
        return {t: spec.runner for t, spec in self.tasks().items()}

    def tasks(self) -> dict[str, TaskSpec]:
        """Every served task with its runner, schema and renderer."""
        self._ensure()
        return {t: s for c in self._contributions.values() for t, s in c.runners.items()}

    def expected_failures(self, plugin: str) -> dict[str, str]:
        """The contract cases a plugin declares as expected to fail, with the reasons."""
        self._ensure()
        contribution = self._contributions.get(plugin)
        return dict(contribution.expected_failures) if contribution else {}

    def foreign_config(self, config: dict[str, Any], source: str = "config.json"
                       ) -> dict[str, Any] | None:
        """The first plugin (in registration order) that recognises a foreign ``config.json``.

        The config is user data: a hook failing on it says nothing about the plugin, which
        stays registered. Every plugin is asked until one recognises the config; if none does
        and one failed, its failure is raised as a ``ConfigError`` naming ``source`` and the
        field. A result of the wrong shape (a plugin bug) is skipped and noted in its report.
        """
        self._ensure()
        failure: ZooError | None = None
        for impl in self.pm.hook.zoo_foreign_config.get_hookimpls():
            plugin = impl.plugin_name
            try:
                found = _foreign_of(impl.function(config=config), plugin)
            except PluginError as e:
                self._note(plugin, str(e).removeprefix(f"plugin {plugin!r}: "))
                continue
            except ZooError as e:  # the plugin recognised the config and says what is wrong
                failure = failure or ConfigError(f"{source}: {e}")
                continue
            except Exception as e:
                if failure is None:
                    failure = _config_failure(source, plugin, e)
                    failure.__cause__ = e
                continue
            if found is not None:
                return found
        if failure is not None:
            raise failure
        return None

    def _note(self, name: str, message: str) -> None:
        """A warning in a plugin's report, once (strict mode: raise it)."""
        report = self.reports.get(name)
        if _truthy(_STRICT):
            raise PluginError(f"plugin {name!r}: {message}")
        if report is not None and message not in report.warnings:
            report.warn(message)

    def problems(self) -> list[str]:
        """One line per broken or degraded plugin (empty before the plugins are loaded)."""
        return [r.problem for r in sorted(self.reports.values(), key=lambda r: r.name)
                if r.problem]




def _config_failure(source: str, plugin: str, error: Exception) -> ConfigError:
    """A hook's crash on a foreign config, said as what is wrong with the config."""
    if isinstance(error, KeyError) and error.args:
        what = f"field {error.args[0]!r} is missing"
    elif isinstance(error, RecursionError):
        what = "it is nested too deeply"
    else:
        what = f"a field has an unexpected value ({type(error).__name__}: {error})"
    return ConfigError(f"{source}: {what}, so plugin {plugin!r} cannot read this config; "
                       "fix the file (compare it with the model's documented config.json)")


def _refusal(what: str, key: str, first: str, later: str) -> str:
    if first == later:
        return f"{what} {key!r} refused: plugin {later!r} registers it twice"
    return (f"{what} {key!r} refused: plugin {first!r} registered it first (plugins register "
            "in entry-point name order); uninstall one, or choose with ZOO_PLUGINS")


def _items(result: Any, plugin: str, hook: str, expected: str) -> list[Any]:
    if result is None:
        return []
    if not isinstance(result, (list, tuple)):
        raise PluginError(f"plugin {plugin!r}: {hook} returned {_short(result)}; "
                          f"return {expected}")
    return list(result)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _components_of(result: Any, plugin: str) -> list[Component]:
    found = []
    for spec in _items(result, plugin, "zoo_components", "a list of zoo_core.component(...)"):
        if not isinstance(spec, Component):
            raise PluginError(f"plugin {plugin!r}: zoo_components returned {_short(spec)} "
                              "among its items; return zoo_core.component(...) specs")
        checked = component(spec.ref, spec.target, summary=spec.summary, tags=spec.tags,
                            paper=spec.paper)
        found.append(Component(**{**checked.__dict__, "plugin": plugin}))
    return found


def _catalog_of(result: Any, plugin: str) -> list[dict[str, Any]]:
    from ._catalog import parse_entry

    found = []
    for raw in _items(result, plugin, "zoo_catalog", "a list of entry dicts"):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) \
                or not raw["name"]:
            raise PluginError(f"plugin {plugin!r}: zoo_catalog returned {_short(raw)} among "
                              "its items; each must be a dict with a 'name' and the fields of "
                              "a registry.toml entry")
        fields = {k: v for k, v in raw.items() if k != "name"}
        parse_entry(raw["name"], fields, f"plugin {plugin!r}")  # raises naming the field
        found.append({"name": raw["name"], **fields})
    return found


def _runners_of(result: Any, plugin: str) -> dict[str, TaskSpec]:
    if result is None:
        return {}
    expected = ("return a dict mapping a task name to 'module:function' or to {'runner': "
                "'module:function', 'schema': {JSON schema}, 'render': 'module:function', "
                "'usage': str, 'at_least': int, 'options': [str]}")
    if not isinstance(result, Mapping):
        raise PluginError(f"plugin {plugin!r}: zoo_task_runners returned {_short(result)}; "
                          + expected)
    specs = {}
    for task, value in result.items():
        raw = {"runner": value} if isinstance(value, str) else value
        ok = (isinstance(task, str) and task and isinstance(raw, Mapping)
              and set(raw) <= {"runner", "schema", "render", "usage", "at_least", "options"}
              and _import_string(raw.get("runner"))
              and isinstance(raw.get("usage", ""), str)
              and type(raw.get("at_least", 1)) is int and raw.get("at_least", 1) >= 0
              and isinstance(raw.get("options", []), (list, tuple))
              and all(isinstance(o, str) for o in raw.get("options", []))
              and isinstance(raw.get("schema", {}), Mapping)
              and (not raw.get("render") or _import_string(raw["render"])))
        if not ok:
            raise PluginError(f"plugin {plugin!r}: zoo_task_runners returned {_short(value)} "
                              f"for task {_short(task)}; " + expected)
        try:
            json.dumps(raw.get("schema", {}))
        except (TypeError, ValueError) as e:
            raise PluginError(f"plugin {plugin!r}: the schema of task {task!r} is not JSON "
                              f"({e})") from None
        specs[task] = TaskSpec(raw["runner"], dict(raw.get("schema", {})),
                               raw.get("render", ""), raw.get("usage", ""),
                               raw.get("at_least", 1), tuple(raw.get("options", ())))
    return specs


def _import_string(value: Any) -> bool:
    return isinstance(value, str) and ":" in value


def _reasons_of(result: Any, plugin: str) -> dict[str, str]:
    if result is None:
        return {}
    if not isinstance(result, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in result.items()):
        raise PluginError(f"plugin {plugin!r}: zoo_expected_failures returned {_short(result)}; "
                          "return a dict mapping 'kind:name::check' to the reason")
    return dict(result)


def _foreign_of(result: Any, plugin: str) -> dict[str, Any] | None:
    if result is None:
        return None
    ok = (isinstance(result, Mapping) and isinstance(result.get("component"), str)
          and result["component"].partition(":")[0] in KINDS
          and isinstance(result.get("config", {}), Mapping)
          and isinstance(result.get("layout"), (str, type(None))))
    if not ok:
        raise PluginError(f"plugin {plugin!r}: zoo_foreign_config returned {_short(result)}; "
                          "return None or {'component': 'kind:name', 'config': {...}, "
                          "'layout': str | None}")
    return dict(result)


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
