"""The one place zoo reads a legacy torch state dict: ``torch.load(weights_only=True)``.

A catalogue entry may say that one of its safetensors files is made from a torch file
(``.pt``/``.pth``/``.bin``, a ``torch.save`` zip or a legacy pickle) found in its sources::

    files = { "pnet.safetensors" = "<sha256 of the converted file>" }
    convert = { "pnet.safetensors" = { from = "pnet.pt", format = "torch",
                                       sha256 = "<sha256 of pnet.pt>" } }

The store fetches ``pnet.pt``, checks its digest (``sha256 = ""``: recorded on first use),
converts it here and checks the converted file against the pinned digest like any other
file. The source digest is recorded beside the converted one in the entry's pins.

What is accepted: ``weights_only=True`` unpickling builds nothing but tensors and plain
containers, so no code of the file runs. The result must be a mapping of string keys to
dense tensors; nested mappings are flattened with dotted keys (``{"pnet": {"conv1.weight": t}}``
gives ``pnet.conv1.weight``). Anything else (lists, numbers, strings, sparse or quantised
tensors, non-string keys) is refused with a ``WeightsError`` naming the key.

The output is canonical: keys sorted, every tensor a compact copy (shared storage is written
twice, as its own bytes), metadata ``{"format": "pt"}`` only, so the same tensors give the
same bytes on every machine and the converted digest can be pinned.

Other formats (dlib's ``.dat``, ...) come from plugins: a ``zoo_converters`` hook maps a format
name to ``"module:function"``, ``function(path) -> {name: tensor}``; :func:`convert_file`
imports it on first use and writes its tensors exactly as a torch file's. A converter raises
a ``ZooError`` (a ``ConfigError`` naming the byte offset, say) for a file it cannot read.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import ConfigError, WeightsError, ZooError

FORMATS = ("torch",)
"""Source formats the core converts itself; plugins add more (``zoo_converters``)."""
FORMAT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
"""What a catalogue may name as a format; which ones exist depends on the plugins installed."""
#: ``torch.save`` stores its zip members uncompressed; a torch file whose members inflate
#: past this many times its own size (plus ``_BLOWUP_SLACK``) is refused unread.
BLOWUP_RATIO = 4
_BLOWUP_SLACK = 1 << 20


def convert_torch(source: str | os.PathLike[str], target: str | os.PathLike[str],
                  name: str | None = None, prefix: str = "") -> Path:
    """Read the torch state dict at ``source`` safely and write it as safetensors to ``target``.

    ``name`` is the file's name in messages (default: the source's file name); ``prefix``
    goes before every key (``"pnet."``).

    Raises:
        WeightsError: the file is not a torch file, holds anything but tensors in plain
            containers (unpickling it would need code to run), or holds no tensor.
    """
    import torch

    from ._weights import save_safetensors

    name = name or Path(source).name
    _refuse_blowup(Path(source), name)
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError from a bad zip, EOFError ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{name!r} cannot be converted: torch.load(weights_only=True) refused it ({first}). "
            "Only state dicts of tensors in plain containers are converted; a file that needs "
            "code to unpickle is never loaded. Re-save it as a plain state dict, or as "
            "safetensors, in a trusted environment."
        ) from None
    tensors = flatten_state(obj, name, prefix)
    if not tensors:
        raise WeightsError(f"{name!r} holds no tensor; expected a state dict")
    return save_safetensors(tensors, target)


def _refuse_blowup(source: Path, name: str) -> None:
    """Refuse a zip whose members declare more bytes than a stored torch file could hold."""
    import zipfile

    if not zipfile.is_zipfile(source):
        return  # a legacy pickle stream: its tensors are stored as they are
    size = source.stat().st_size
    try:
        with zipfile.ZipFile(source) as z:
            inflated = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise WeightsError(f"{name!r} is not a readable torch zip ({e})") from None
    if inflated > BLOWUP_RATIO * size + _BLOWUP_SLACK:
        raise WeightsError(
            f"{name!r} ({size} bytes) would inflate to {inflated} bytes: torch.save stores its "
            "members uncompressed, so this is a decompression bomb or not a torch file; "
            "re-save it with torch.save in a trusted environment")


def convert_file(fmt: str, source: str | os.PathLike[str], target: str | os.PathLike[str],
                 name: str | None = None, prefix: str = "") -> Path:
    """Convert ``source`` of format ``fmt`` (``"torch"`` or a plugin's) to canonical safetensors.

    Raises:
        ConfigError: no installed plugin converts ``fmt``, or its converter failed.
        WeightsError: the converter returned anything but a dict of dense tensors.
    """
    if fmt == "torch":
        return convert_torch(source, target, name, prefix)
    from ._weights import save_safetensors

    name = name or Path(source).name
    converters = plugin_converters()
    if fmt not in converters:
        raise ConfigError(f"{name!r} has format {fmt!r}, which no installed plugin converts "
                          f"(known: {sorted({*FORMATS, *converters})}); install the plugin "
                          "that provides it (`zoo plugins` lists them)")
    plugin, target_fn = converters[fmt]
    module, _, attr = target_fn.partition(":")
    try:
        tensors = getattr(importlib.import_module(module), attr)(os.fspath(source))
    except ZooError:
        raise
    except Exception as e:  # a converter's bug must not pass for a bad file
        raise ConfigError(f"{name!r}: converter {target_fn!r} of plugin {plugin!r} for format "
                          f"{fmt!r} failed: {type(e).__name__}: {e}") from e
    flat = flatten_state(tensors, name, prefix)
    if not flat:
        raise WeightsError(f"{name!r}: converter {target_fn!r} returned no tensor")
    return save_safetensors(flat, target)


def plugin_converters() -> dict[str, tuple[str, str]]:
    """Format -> (plugin, ``"module:function"``) from every plugin's ``zoo_converters``; the
    first plugin to claim a format keeps it."""
    from ._registry import REGISTRY

    REGISTRY.components()  # loads the plugins
    found: dict[str, tuple[str, str]] = {}
    for impl in reversed(REGISTRY.pm.hook.zoo_converters.get_hookimpls()):  # registration order
        result = impl.function()
        if not isinstance(result, Mapping) or not all(
                isinstance(k, str) and FORMAT_NAME.fullmatch(k) and k not in FORMATS
                and isinstance(v, str) and ":" in v for k, v in result.items()):
            raise ConfigError(f"plugin {impl.plugin_name!r}: zoo_converters returned "
                              f"{_short(result)}; return {{'format': 'module:function'}}")
        for fmt, fn in result.items():
            found.setdefault(fmt, (impl.plugin_name, fn))
    return found


def flatten_state(obj: Any, name: str, prefix: str = "") -> dict[str, Any]:
    """String keys to compact dense CPU tensors; nested mappings give dotted keys."""
    import torch

    if not isinstance(obj, Mapping):
        where = f"key {prefix.rstrip('.')!r}" if prefix else "the top level"
        raise WeightsError(f"{name!r}: {where} holds a {type(obj).__name__}, expected a state "
                           "dict (a mapping of names to tensors)")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not key:
            raise WeightsError(f"{name!r}: key {key!r} under {prefix or 'the top level'!r} "
                               "is not a non-empty string")
        full = prefix + key
        if isinstance(value, Mapping):
            part = flatten_state(value, name, full + ".")
        elif isinstance(value, torch.Tensor):
            if value.layout != torch.strided or value.is_quantized:
                raise WeightsError(f"{name!r}: tensor {full!r} has layout {value.layout} "
                                   "(only dense tensors are converted)")
            part = {full: value.detach().clone(memory_format=torch.contiguous_format)}
        else:
            raise WeightsError(f"{name!r}: key {full!r} holds a {type(value).__name__} "
                               f"({_short(value)}), not a tensor; convert only the state dict")
        clash = sorted(out.keys() & part.keys())
        if clash:
            raise WeightsError(f"{name!r}: nested keys flatten onto existing key {clash[0]!r}")
        out.update(part)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
