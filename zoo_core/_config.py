"""Frozen dataclass configs: presets, overrides and a JSON round trip."""

from __future__ import annotations

import dataclasses
import functools
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any

from ._errors import ConfigError, ZooError, unknown


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
    """Rebuild a config from :func:`config_to_dict` output; lists go back to tuples.

    Every value is checked against the field's type hint (``int`` is not ``bool``, a
    ``float`` field takes an int), so a hand-edited ``config.json`` fails with a
    ``ConfigError`` naming the field instead of a ``TypeError`` deep in the model.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a {config_class.__name__} must come from an object, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(config_class) if f.init}
    bad = [k for k in data if k not in fields]
    if bad:
        raise ConfigError(
            f"{config_class.__name__} has no field(s) {bad}; valid fields: {sorted(fields)}"
        )
    hints = _hints(config_class)
    values = {k: _coerce(hints.get(k), v, f"{config_class.__name__}.{k}") for k, v in data.items()}
    try:
        return config_class(**values)
    except ZooError:  # the config's own check (__post_init__), with its own message and type
        raise
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as e:
        zeros = [f"{k}={v!r}" for k, v in values.items() if v == 0 and type(v) is int]
        hint = f" (fields at 0: {', '.join(zeros)})" if isinstance(e, ArithmeticError) \
            and zeros else ""
        raise ConfigError(f"invalid {config_class.__name__}: {type(e).__name__}: {e}{hint}; "
                          "fix the field's value") from None


@functools.lru_cache(maxsize=256)
def _hints(config_class: type) -> dict[str, Any]:
    """The resolved type hints of a config class (resolving them evaluates annotations)."""
    return typing.get_type_hints(config_class)


_SCALARS: dict[type, tuple[type, ...]] = {
    bool: (bool,), int: (numbers.Integral,), float: (numbers.Real,), str: (str,),
}


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """``value`` checked against ``hint`` (JSON lists become tuples where a tuple is hinted)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is None or hint is Any or isinstance(hint, typing.TypeVar):
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise _wrong(where, value, hint)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError:
                continue
        raise _wrong(where, value, hint)
    if origin is typing.Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise _wrong(where, value, hint)
    if hint in _SCALARS:
        ok = isinstance(value, _SCALARS[hint]) and (hint is bool or not isinstance(value, bool))
        if not ok:
            raise _wrong(where, value, hint)
        return float(value) if hint is float else int(value) if hint is int else value
    if hint is tuple or origin is tuple or hint is list or origin is list:
        if not isinstance(value, (list, tuple)):
            raise _wrong(where, value, hint)
        if args and len(args) == 2 and args[1] is Ellipsis:
            items = [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
        elif args and origin is tuple:
            if len(args) != len(value):
                raise _wrong(where, value, hint)
            pairs = enumerate(zip(args, value, strict=True))
            items = [_coerce(a, v, f"{where}[{i}]") for i, (a, v) in pairs]
        else:
            items = [_coerce(args[0] if args else None, v, f"{where}[{i}]")
                     for i, v in enumerate(value)]
        return list(items) if hint is list or origin is list else tuple(items)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise _wrong(where, value, hint)
        return config_from_dict(hint, value)
    if hint is dict or origin in (dict, Mapping) or hint is Mapping:
        if not isinstance(value, Mapping):
            raise _wrong(where, value, hint)
        return value
    return value


def _wrong(where: str, value: Any, hint: Any) -> ConfigError:
    name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return ConfigError(f"field {where!r} must be {name}, got {text}")


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
        raise unknown(f"preset of {factory.__name__}", preset, presets,
                      listing="`zoo info kind:name`")
    if not overrides:
        return base
    names = {f.name for f in dataclasses.fields(config_class) if f.init}
    bad = sorted(set(overrides) - names)
    if bad:
        raise ZooError(f"{config_class.__name__} has no field(s) {bad}; valid: {sorted(names)}")
    data = {**config_to_dict(base), **{k: _jsonable(v) for k, v in overrides.items()}}
    return config_from_dict(config_class, data)
