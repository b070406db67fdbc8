"""The public verbs: ``load``, ``create``, ``list``, ``info`` (``push`` and ``save`` live in
``_publish``)."""

from __future__ import annotations

import builtins
import dataclasses
import fnmatch
import inspect
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._catalog import CATALOG, Entry, Source, parse_source
from ._config import _jsonable, build_config, config_from_dict, config_to_dict
from ._errors import ZooError
from ._registry import KINDS, REGISTRY, Component
from ._storage import CONFIG_NAME, STORE, WEIGHTS_NAME


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

            raise unknown(f"preset of {ref}", preset, presets)
        overrides = {**presets[preset], **overrides}
    return factory(**overrides)


def load(name: str, *, device: Any = None, dtype: Any = None) -> Any:
    """A ready component from a catalogue entry, ``hf:org/repo@rev`` or ``dir:/path``.

    Files are fetched from the entry's sources in order and verified against their sha256
    before use. Models come back in eval mode.

    Example:
        >>> model = zoo.load("all-minilm-l6-v2")
        >>> tok = zoo.load("bert-base-uncased")
    """
    if name.startswith("hf:"):
        source = parse_source(name)
        folder = _fetch_hub_repo(source)
        return _from_folder(folder, name, device, dtype)
    if name.startswith("dir:"):
        folder = Path(name[4:]).expanduser()
        if not folder.is_dir():
            raise ZooError(f"{name!r}: {str(folder)!r} is not a folder")
        return _from_folder(folder, name, device, dtype)
    kind = name.partition(":")[0]
    if ":" in name and kind in KINDS:
        raise ZooError(f"{name!r} is a component, not an entry: zoo.create({name!r}, preset=...) "
                       "builds it with random weights; zoo.list() shows pretrained entries")
    entry = CATALOG.get(name)
    folder = STORE.fetch(entry)
    return _instantiate(entry, folder, device, dtype)


def _instantiate(entry: Entry, folder: Path, device: Any, dtype: Any) -> Any:
    comp = REGISTRY.get(entry.component)
    factory = comp.load()
    if comp.kind != "model":
        return factory.load(folder, **entry.config)
    config_file = folder / CONFIG_NAME
    config = None
    if config_file.is_file() and CONFIG_NAME in entry.files:
        doc = json.loads(config_file.read_text("utf-8"))
        if "zoo" in doc:
            config = config_from_dict(factory.config_class, doc["config"])
    if config is None:
        config = build_config(factory, entry.preset, entry.config)
    weights = sorted(f for f in entry.files if f.endswith(".safetensors"))
    if not weights:
        model = factory(config)
    else:
        from ._weights import load_state_dict, read_safetensors, skip_init

        state = read_safetensors([folder / w for w in weights])
        with skip_init():  # every weight is loaded (strictly) below
            model = factory(config)
        load_state_dict(model, state, entry.layout, assign=True)
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()


def _from_folder(folder: Path, name: str, device: Any, dtype: Any) -> Any:
    """A folder laid out like a Hub repo: ours (``zoo`` metadata) or a recognised foreign one."""
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        raise ZooError(f"{name!r} has no {CONFIG_NAME}; write one with zoo.push() or "
                       "model.save_pretrained()")
    doc = json.loads(config_file.read_text("utf-8"))
    if "zoo" in doc:
        meta = doc["zoo"]
        entry = Entry(name=name, component=meta["component"], config=doc.get("config", {}),
                      files={f: "" for f in [CONFIG_NAME, *meta.get("files", [])]},
                      origin=str(folder))
        return _instantiate(entry, folder, device, dtype)
    found = REGISTRY.foreign_config(doc)
    if not found:
        raise ZooError(f"{name!r}: {CONFIG_NAME} was not written by zoo and no installed plugin "
                       f"recognises it (model_type={doc.get('model_type')!r}); see `zoo plugins`")
    weights = sorted(p.name for p in folder.glob("*.safetensors"))
    pickles = sorted(folder.glob("*.bin"))
    if not weights and pickles:
        from ._storage import refuse_pickle

        refuse_pickle(pickles[0])
    entry = Entry(name=name, component=found["component"], config=found.get("config", {}),
                  files={w: "" for w in weights}, layout=found.get("layout"), origin=str(folder))
    return _instantiate(entry, folder, device, dtype)


def _fetch_hub_repo(source: Source) -> Path:
    from huggingface_hub import hf_hub_download

    config_path = Path(hf_hub_download(source.location, CONFIG_NAME, revision=source.revision))
    doc = json.loads(config_path.read_text("utf-8"))
    for f in doc.get("zoo", {}).get("files") or [WEIGHTS_NAME]:
        hf_hub_download(source.location, f, revision=source.revision)
    return config_path.parent


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
    if name in comps:
        return _component_info(comps[name])
    entry = CATALOG.get(name)
    out = entry.as_dict()
    out["kind"] = entry.kind
    out["pin"] = ("sha256" if all(entry.files.values()) else "first-use") if entry.files \
        else None
    recorded = STORE.pins(entry)
    out["local_pins"] = {f: recorded[f] for f, d in entry.files.items() if not d and recorded[f]}
    out["cached"] = STORE.snapshot(entry.name).is_dir()
    return out


def _component_info(c: Component) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": c.ref, "kind": c.kind, "target": c.target, "summary": c.summary,
        "tags": builtins.list(c.tags), "paper": c.paper, "plugin": c.plugin}
    factory = c.load()
    config_class = getattr(factory, "config_class", None)
    presets = getattr(factory, "presets", None) or {}
    if config_class is not None and dataclasses.is_dataclass(config_class):
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
    target = factory.__init__ if isinstance(factory, type) else factory
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
