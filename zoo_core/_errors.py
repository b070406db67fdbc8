"""Errors raised by zoo. Each message says what was wrong, quotes the value and gives the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ZooError(Exception):
    """Base class of every error zoo raises on purpose."""


class UnknownNameError(ZooError, KeyError):
    """A component, entry or preset name that is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class PluginError(ZooError):
    """A plugin failed to import, register, or declared something invalid."""


class CatalogError(ZooError):
    """A catalogue file or entry does not follow the schema."""


class IntegrityError(ZooError):
    """A file's sha256 digest does not match the one its entry pins."""


class FetchError(ZooError):
    """No source could provide an entry's files."""


class WeightsError(ZooError):
    """A weight file is unsafe, or its keys do not fit the model."""


class UnsupportedError(ZooError):
    """A kernel backend or option that does not support the given call."""


class InputError(ZooError, ValueError):
    """A value passed by the caller (ids, shapes, labels, options) is invalid.

    Plugins raise it (or a subclass) for every bad input, so ``except zoo.ZooError`` and
    ``except ValueError`` both catch it. The message quotes the value and says the fix.
    """


class ConfigError(ZooError, ValueError):
    """A configuration field (a preset, an override, a ``config.json``) is invalid."""


class UsageError(InputError):
    """A command given the wrong number or shape of arguments (``zoo`` exits 2, as argparse)."""


def close_matches(name: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Registered names closest to ``name``, best first (prefix matches count as close)."""
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    prefixed = [c for c in pool if c.split(":")[-1].startswith(name.split(":")[-1][:3])]
    return list(dict.fromkeys(close + prefixed))[:n]


def unknown(what: str, name: str, candidates: Iterable[str], hint: str = "",
            listing: str = "`zoo list`") -> UnknownNameError:
    """Build an ``UnknownNameError`` that suggests the closest names; a short pool is listed
    whole, a long one by pointing at ``listing`` (the command that shows it)."""
    pool = list(candidates)
    near = close_matches(name, pool)
    msg = f"unknown {what} {name!r}"
    if near:
        msg += f"; did you mean {', '.join(repr(c) for c in near)}?"
    elif 0 < len(pool) <= 8:
        msg += f"; valid: {', '.join(repr(c) for c in sorted(pool))}"
    elif pool:
        msg += f"; {len(pool)} are registered (see {listing})"
    else:
        msg += "; none are registered (is the plugin installed? see `zoo plugins`)"
    if hint:
        msg += f" {hint}"
    return UnknownNameError(msg)
