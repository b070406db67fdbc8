"""The public verbs: ``create``, ``list``, ``info`` (``load`` lives in ``_loading``, ``push``
and ``save`` in ``_publish``)."""

from __future__ import annotations

import builtins
import dataclasses
import fnmatch
import inspect
import json
import re
from collections.abc import Mapping
from typing import Any

from ._catalog import CATALOG, Entry, Source
from ._config import _jsonable, build_config, config_to_dict
from ._errors import ZooError
from ._registry import KINDS, REGISTRY, Component
from ._storage import STORE


def create(ref: str, preset: str | None = None, **overrides: Any) -> Any:
    """Build component ``kind:name`` with random init (no weights).

    Models take ``preset`` plus config-field overrides; other kinds take constructor keyword
    arguments, with ``preset`` naming a dict in the factory's ``presets``.

    Example:
        >>> loss = zoo.create("loss:arcface", embedding_size=512, num_classes=1000)
        >>> bert = zoo.create("model:bert", preset="tiny", num_layers=2)
    """
    factory = REGISTRY.get(ref).load()
    if hasattr(factory, "config_class"):
        return factory(build_config(factory, preset, overrides))
    if preset is not None:
        presets = getattr(factory, "presets", {}) or {}
        if preset not in presets:
            from ._errors import unknown

            raise unknown(f"preset of {ref}", preset, presets, listing=f"`zoo info {ref}`")
        overrides = {**presets[preset], **overrides}
    return factory(**overrides)


def list(  # noqa: A001 - mirrors timm.list_models
    pattern: str | None = None, kind: str | None = None, pretrained: bool | None = None,
) -> builtins.list[str]:
    """Names of catalogue entries and components, filtered and naturally sorted.

    ``pattern`` is an fnmatch pattern; ``pretrained=True`` keeps entries with weights,
    ``False`` keeps components (random init only).

    Example:
        >>> zoo.list("bert*", pretrained=True)
        ['bert-base', 'bert-large']
    """
    if kind is not None and kind not in KINDS:
        raise ZooError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    names: builtins.list[tuple[str, str, bool]] = []
    names += [(e.name, e.kind, e.pretrained) for e in CATALOG.entries().values()]
    names += [(c.ref, c.kind, False) for c in REGISTRY.components().values()]
    out = [
        n for n, k, has_weights in names
        if (pattern is None or fnmatch.fnmatch(n, pattern))
        and (kind is None or k == kind)
        and (pretrained is None or has_weights == pretrained)
    ]
    return sorted(set(out), key=_natural)


def _natural(text: str) -> builtins.list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def info(name: str) -> dict[str, Any]:
    """What zoo knows of an entry or a component.

    An entry's ``pin`` says how its files are pinned: ``"sha256"`` (every digest is in the
    catalogue), ``"first-use"`` (some are ``""``: the digest of the first verified download is
    recorded, see ``local_pins``) or ``None`` (no files). A component's module is imported to
    list its ``presets`` and ``config_fields`` (``name``, ``type``, ``default``): the config
    dataclass of a model, the constructor's keyword arguments of the other kinds.
    """
    comps = REGISTRY.components()
    if name in comps or name.partition(":")[0] in KINDS:
        return _component_info(REGISTRY.get(name))  # an unknown one: the closest components
    if name.startswith(("hf:", "dir:")):
        entry = ref_entry(name)
        return {**entry.as_dict(), "kind": entry.kind, "pin": None, "local_pins": {},
                "cached": True}
    entry = CATALOG.get(name)
    out = entry.as_dict()
    out["kind"] = entry.kind
    out["available"] = entry.component in comps  # else `plugin` names what to install
    out["pin"] = ("sha256" if all(entry.files.values()) else "first-use") if entry.files \
        else None
    recorded = STORE.pins(entry)
    out["local_pins"] = {f: recorded[f] for f, d in entry.files.items() if not d and recorded[f]}
    out["cached"] = STORE.snapshot(entry.name).is_dir()
    return out


def ref_entry(name: str) -> Entry:
    """An ``hf:org/repo@rev`` or ``dir:/path`` reference described as an entry, from its
    ``config.json`` alone (the only file fetched): its component, config and files; its task
    is that of the catalogue entries built on the same component; a tokenizer saved beside a
    model is the reference's own (``zoo.load_tokenizer(name)``)."""
    from pathlib import Path

    from ._catalog import parse_source
    from ._publish import task_of
    from ._resolve import read_config
    from ._storage import CONFIG_NAME

    sources: tuple[Source, ...] = ()
    if name.startswith("hf:"):
        source = parse_source(name)
        sources = (source,)
        folder = STORE.fetch(Entry(name=name, component="", files={CONFIG_NAME: ""},
                                   sources=sources), record=len(source.revision or "") == 40)
    else:
        folder = Path(name[4:]).expanduser()
    if not (folder / CONFIG_NAME).is_file():
        raise ZooError(f"{name!r} has no {CONFIG_NAME}; write one with zoo.save() or zoo.push()")
    doc = read_config(folder / CONFIG_NAME, name)
    meta = doc["zoo"] if "zoo" in doc else (REGISTRY.foreign_config(doc) or {})
    component = meta.get("component") or ""
    if not component:
        raise ZooError(f"{name!r}: {CONFIG_NAME} was not written by zoo and no installed plugin "
                       "recognises it; see `zoo plugins`")
    has_tokenizer = component.startswith("tokenizer:") or bool(
        (meta.get("tokenizer") or {}).get("component"))
    return Entry(name=name, component=component,
                 config=doc.get("config", meta.get("config", {})),
                 files={f: "" for f in [CONFIG_NAME, *meta.get("files", [])]}, sources=sources,
                 task=task_of(component) or "", tokenizer=name if has_tokenizer else "",
                 layout=meta.get("layout"), origin=str(folder))


def _component_info(c: Component) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": c.ref, "kind": c.kind, "target": c.target, "summary": c.summary,
        "tags": builtins.list(c.tags), "paper": c.paper, "plugin": c.plugin}
    try:
        factory = c.load()
    except ZooError as e:  # the registration is still worth showing, with what is wrong
        out["error"] = str(e)
        return out
    config_class: Any = getattr(factory, "config_class", None)
    presets = getattr(factory, "presets", None) or {}
    if isinstance(config_class, type) and dataclasses.is_dataclass(config_class):
        out["config_class"] = config_class.__name__
        fields = [f for f in dataclasses.fields(config_class) if f.init]
        out["config_fields"] = [_field(f.name, f.type, _default(f)) for f in fields]
        try:
            base = config_to_dict(config_class())
        except TypeError:  # required fields: no defaults to compare presets with
            base = {}
        out["presets"] = {n: _differs(p, base) for n, p in presets.items()}
    else:
        out["config_fields"] = _arguments(factory)
        out["presets"] = {n: _jsonable(dict(p)) for n, p in presets.items()}
    return out


_NO_DEFAULT = object()


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _NO_DEFAULT


def _field(name: str, hint: Any, default: Any) -> dict[str, Any]:
    type_name = hint if isinstance(hint, str) else getattr(hint, "__name__", None) or str(hint)
    out: dict[str, Any] = {"name": name, "type": type_name.replace("typing.", "")}
    if default is not _NO_DEFAULT:
        value = _jsonable(default)
        out["default"] = value if _is_json(value) else repr(default)
    return out


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _arguments(factory: Any) -> builtins.list[dict[str, Any]]:
    """Keyword arguments of a factory's constructor (or of the function itself)."""
    target = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    out = []
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        hint = "" if p.annotation is p.empty else p.annotation
        out.append(_field(p.name, hint, _NO_DEFAULT if p.default is p.empty else p.default))
    return out


def _differs(preset: Any, base: dict[str, Any]) -> dict[str, Any]:
    """The fields of a preset (a config or a dict) that differ from the defaults."""
    values = _jsonable(preset) if isinstance(preset, Mapping) else config_to_dict(preset)
    return {k: v for k, v in values.items() if k not in base or base[k] != v}
