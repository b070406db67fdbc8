"""zoo: a plugin-based model zoo for PyTorch.

    >>> import zoo_core as zoo
    >>> model = zoo.load("all-minilm-l6-v2")          # catalogue entry, verified weights
    >>> loss = zoo.create("loss:arcface", embedding_size=512, num_classes=1000)
    >>> zoo.list("bert*")
    >>> zoo.task("all-minilm-l6-v2")(["A man eats.", "A man is eating."])   # like `zoo run`
    >>> tok = zoo.load_tokenizer("all-minilm-l6-v2")                        # AutoTokenizer

Every reference (entry, ``hf:``, ``pkg:``, ``dir:``) resolves to a verified view of exactly the
files it pins; trust and limits come from the caller's arguments only:
``zoo.load(ref, random_init=False, max_bytes=None, allow_cast=False)`` (``max_bytes``: refuse a
model larger than this, default the memory available; ``allow_cast``: let int8/bool weights
change dtype on load, as ``zoo.load_state_dict(..., allow_cast=True)``).

Importing ``zoo_core`` does not import torch; the kinds (``zoo.Model`` …) import it on
first access.
"""

from __future__ import annotations

from typing import Any

from . import checks, native, spares
from ._api import create, info, list
from ._catalog import CATALOG, Entry, Source, parse_source
from ._config import build_config, config_from_dict, config_to_dict
from ._derived import derived
from ._errors import (
    CatalogError,
    ConfigError,
    FetchError,
    InputError,
    IntegrityError,
    PluginError,
    UnknownNameError,
    UnsupportedError,
    UsageError,
    WeightsError,
    ZooError,
)
from ._files import atomic_path, atomic_write, sha256_file
from ._hookspecs import hookimpl
from ._loading import load
from ._progress import progress
from ._publish import load_tokenizer, push, save
from ._registry import KINDS, REGISTRY, Component, component
from ._storage import STORE
from ._tasks import Task, task

__version__ = "0.1.0"

_KIND_CLASSES = ("Model", "Tokenizer", "Loss", "Metric", "Kernel", "Backend", "Transform")
_WEIGHTS_API = ("load_state_dict", "read_safetensors", "save_safetensors")


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object or module without an installed entry point; return its name."""
    name = REGISTRY.register_plugin(plugin, name)
    CATALOG.invalidate()
    return name


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`."""
    REGISTRY.unregister_plugin(name)
    CATALOG.invalidate()


def __getattr__(attr: str) -> Any:
    if attr in _KIND_CLASSES:  # imported on first use: Tokenizer and Kernel need no torch
        from . import kinds

        return getattr(kinds, attr)
    if attr in _WEIGHTS_API:  # imports torch
        from . import _weights

        return getattr(_weights, attr)
    raise AttributeError(f"module 'zoo_core' has no attribute {attr!r}")


__all__ = [
    "KINDS", "CATALOG", "REGISTRY", "STORE", "Backend", "CatalogError", "Component",
    "ConfigError", "Entry", "FetchError", "InputError", "IntegrityError", "Kernel", "Loss",
    "Metric", "Model", "PluginError", "Source", "Tokenizer", "Transform", "UnknownNameError",
    "UnsupportedError", "UsageError", "WeightsError", "ZooError", "atomic_path", "atomic_write",
    "build_config", "checks", "component", "config_from_dict", "config_to_dict", "create",
    "derived",
    "hookimpl", "info", "list", "load", "load_state_dict", "load_tokenizer", "native",
    "parse_source",
    "progress", "push", "read_safetensors", "register_plugin", "save", "save_safetensors",
    "sha256_file", "spares", "Task", "task", "unregister_plugin",
]
