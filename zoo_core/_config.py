"""Frozen dataclass configs: presets, overrides and a JSON round trip."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from ._errors import ZooError, unknown


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass config (tuples become lists), init fields only."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ZooError(f"expected a dataclass config instance, got {config!r}")
    out = {}
    for f in dataclasses.fields(config):
        if f.init:
            out[f.name] = _jsonable(getattr(config, f.name))
    return out


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def config_from_dict(config_class: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a config from :func:`config_to_dict` output; lists go back to tuples."""
    fields = {f.name: f for f in dataclasses.fields(config_class) if f.init}
    bad = [k for k in data if k not in fields]
    if bad:
        raise ZooError(
            f"{config_class.__name__} has no field(s) {bad}; valid fields: {sorted(fields)}"
        )
    hints = typing.get_type_hints(config_class)
    return config_class(**{k: _coerce(hints.get(k), v) for k, v in data.items()})


def _coerce(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is not type(None) and value is not None:
                return _coerce(arg, value)
        return value
    if isinstance(value, list) and (origin is tuple or hint is tuple):
        args = typing.get_args(hint)
        inner = args[0] if args and (len(args) == 2 and args[1] is Ellipsis) else None
        return tuple(_coerce(inner, v) for v in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return config_from_dict(hint, value)
    return value


def build_config(factory: Any, preset: str | None, overrides: Mapping[str, Any]) -> Any:
    """``factory.presets[preset]`` (or the defaults) with ``overrides`` applied."""
    config_class = factory.config_class
    presets: Mapping[str, Any] = getattr(factory, "presets", {}) or {}
    if preset is None:
        base = config_class()
    elif preset in presets:
        base = presets[preset]
        if isinstance(base, Mapping):
            base = config_from_dict(config_class, base)
    else:
        raise unknown(f"preset of {factory.__name__}", preset, presets)
    if not overrides:
        return base
    names = {f.name for f in dataclasses.fields(config_class) if f.init}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ZooError(f"{config_class.__name__} has no field(s) {bad}; valid: {sorted(names)}")
    data = {**config_to_dict(base), **{k: _jsonable(v) for k, v in overrides.items()}}
    return config_from_dict(config_class, data)
