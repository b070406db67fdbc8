"""Checking user input, one way for every component: ``zoo.checks``.

Every check raises :class:`zoo.InputError` whose message names the argument, quotes the bad
value and says the fix, so a plugin writes one line per argument::

    import zoo_core as zoo

    def forward(self, images):
        zoo.checks.tensor(images, "images", dtype="float", shape=(None, 3, 112, 112),
                          fix="resize the crops to 112x112 RGB")

Shape and dtype checks read tensor metadata: they cost nothing, never wait for the device and
never break a ``torch.compile`` graph. Value checks (:func:`in_range`) must ask the device for
a number, so they run only with the debug switch on, ``ZOO_DEBUG=1`` in the environment (read
at each call, so a test or a notebook may flip it), and never inside a compiled graph.

This module imports torch only when a check runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ._errors import InputError

DEBUG_ENV = "ZOO_DEBUG"

#: dtype families ``tensor(dtype=...)`` accepts by name
_FAMILIES = ("float", "integer", "bool", "complex")


def debug() -> bool:
    """Whether value checks that ask the device for a number are on (``ZOO_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def instance(value: Any, types: type | tuple[type, ...], name: str, fix: str = "") -> Any:
    """Return ``value`` if it is an instance of ``types`` (``bool`` is not an ``int`` here)."""
    wanted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted):
        return value
    names = " or ".join(t.__name__ for t in wanted)
    raise InputError(_message(name, f"a {names}", f"a {type(value).__name__} ({_short(value)})",
                              fix))


def tensor(x: Any, name: str, *, ndim: int | Sequence[int] | None = None,
           dtype: Any = None, shape: Sequence[int | str | None] | None = None,
           fix: str = "") -> Any:
    """Return ``x`` if it is a ``torch.Tensor`` that fits, else raise :class:`zoo.InputError`.

    Args:
        x: the value given by the caller.
        name: the argument's name, as the caller wrote it (``"input_ids"``).
        ndim: the number of dimensions, or the accepted numbers.
        dtype: a ``torch.dtype``, a tuple of them, or a family: ``"float"``, ``"integer"``,
            ``"bool"``, ``"complex"`` (or a tuple of families).
        shape: the sizes: an int, or ``None`` or a name (``"B"``) for any size; its length
            also fixes ``ndim``.
        fix: what the caller should do, appended to the message.
    """
    import torch

    if not isinstance(x, torch.Tensor):
        raise InputError(_message(name, "a torch.Tensor",
                                  f"a {type(x).__name__} ({_short(x)})", fix))
    if dtype is not None and not _dtype_fits(x.dtype, dtype):
        raise InputError(_message(name, f"a tensor of dtype {_dtype_text(dtype)}",
                                  f"dtype {x.dtype!r}", fix))
    if shape is not None:
        want = tuple(shape)
        fits = x.dim() == len(want) and all(not isinstance(w, int) or w == s
                                            for w, s in zip(want, x.shape, strict=False))
        if not fits:
            text = "(" + ", ".join("*" if w is None else str(w) for w in want) + \
                ("," if len(want) == 1 else "") + ")"
            raise InputError(_message(name, f"of shape {text}", f"{tuple(x.shape)!r}", fix))
    elif ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            dims = " or ".join(str(n) for n in allowed)
            raise InputError(_message(name, f"{dims}-dimensional",
                                      f"shape {tuple(x.shape)!r}", fix))
    return x


def in_range(x: Any, name: str, low: int | float, high: int | float, *,
             allow: int | None = None, fix: str = "") -> None:
    """Every value of ``x`` in ``[low, high)`` (``allow``: one more value accepted, such as an
    ignore index). Runs only with :func:`debug` on and outside ``torch.compile``: reading a
    value from the device stalls a GPU and breaks a compiled graph."""
    import torch

    if not debug() or torch.compiler.is_compiling() or not x.numel():
        return
    bad = (x < low) | (x >= high)
    if allow is not None:
        bad &= x != allow
    if bool(bad.any()):
        value = x[bad].flatten()[0].item()
        extra = f" (or {allow})" if allow is not None else ""
        raise InputError(_message(name, f"in [{low}, {high}){extra}", f"a value {value!r}", fix))


def _message(name: str, want: str, got: str, fix: str) -> str:
    text = f"{name} must be {want}, got {got}"
    return f"{text}; {fix}" if fix else text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dtype_fits(actual: Any, wanted: Any) -> bool:
    if not isinstance(wanted, tuple):
        wanted = (wanted,)
    for w in wanted:
        if w == "float" and actual.is_floating_point:
            return True
        if w == "integer" and not actual.is_floating_point and not actual.is_complex \
                and str(actual) != "torch.bool":
            return True
        if w == "bool" and str(actual) == "torch.bool":
            return True
        if w == "complex" and actual.is_complex:
            return True
        if not isinstance(w, str) and actual == w:
            return True
        if isinstance(w, str) and w not in _FAMILIES:
            raise ValueError(f"unknown dtype family {w!r}; valid: {_FAMILIES}")
    return False


def _dtype_text(wanted: Any) -> str:
    items = wanted if isinstance(wanted, tuple) else (wanted,)
    return " or ".join(str(w) for w in items)
