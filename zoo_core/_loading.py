"""``zoo.load``: a catalogue entry, ``hf:org/repo@rev`` or ``dir:/path`` made ready to use.

Every reference goes through ``_resolve.resolve`` (a verified view of exactly the files the
entry pins). Untrusted input is checked before anything is built: a ``config.json`` must be a
JSON object whose ``zoo`` section names a component and valid file names; its ``config``
fields are type-checked against the config dataclass (``config_from_dict``); every model, from
a catalogue preset, our ``config.json`` or a foreign one, is first built on the ``meta``
device with its parameter bytes counted as they are registered, so a config asking for more
than the limit (``max_bytes``; default: the memory available, and no more than what the
entry's weight files can fill) is a ``ConfigError`` before anything is allocated.

Trust comes from the caller only: ``random_init`` and ``allow_cast`` are arguments, and an
entry or file whose config sets a caller-only flag (``trust_pattern`` …) is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from ._catalog import Entry, attach_entry
from ._errors import ConfigError, WeightsError, ZooError
from ._registry import REGISTRY
from ._resolve import check_trust, read_config, resolve, weights_of
from ._storage import CONFIG_NAME, STORE

_HEADROOM = 4  # a model may hold its weights in a dtype up to 4x wider than the file's
_SCANNED: dict[str, list[str]] = {}  # digest -> its non-finite tensors (fixed by the digest)
log = logging.getLogger("zoo")


def load(name: str, *, device: Any = None, dtype: Any = None, random_init: bool = False,
         max_bytes: int | None = None, allow_cast: bool = False) -> Any:
    """A ready component from a catalogue entry, ``hf:org/repo@rev`` or ``dir:/path``.

    Files are fetched from the entry's sources in order and verified against their sha256
    before use; only the files the entry names are visible to the loader. Models come back
    in eval mode.

    Args:
        random_init: accept a ``dir:`` or ``hf:`` model that has a ``config.json`` but no
            weights (otherwise an error).
        max_bytes: refuse a model whose parameters and buffers would take more bytes
            (default: the memory available now).
        allow_cast: let weights change dtype kind on load (an int8 or bool tensor into a
            float parameter, or back); off, such a change is a ``WeightsError``.

    Example:
        >>> model = zoo.load("all-minilm-l6-v2")
        >>> tok = zoo.load("bert-base-uncased")
    """
    if not isinstance(name, str):
        raise ZooError(f"zoo.load() takes a name, got {name!r}")
    found = resolve(name, random_init=random_init)
    catalogued = not name.startswith(("hf:", "dir:"))
    built = instantiate(found.entry, found.folder, device=device, dtype=dtype,
                        random_init=random_init or catalogued, max_bytes=max_bytes,
                        allow_cast=allow_cast)
    return attach_entry(built, found.entry)


def instantiate(entry: Entry, folder: Path, *, device: Any = None, dtype: Any = None,
                random_init: bool = False, max_bytes: int | None = None,
                allow_cast: bool = False) -> Any:
    """The component of ``entry`` built from the files of its view ``folder``."""
    check_trust(entry)
    comp = REGISTRY.get(entry.component)
    factory = comp.load()
    if comp.kind != "model":
        return factory.load(folder, **entry.config)
    from ._weights import build_loaded, build_sized, read_safetensors

    where = f"{entry.name!r}: {CONFIG_NAME}"
    config = _config(entry, folder, factory, where)
    weights = weights_of(entry, folder)
    limit = max_bytes if max_bytes is not None else available_memory()
    # a config from a file also runs its example inputs on meta (the catalogue's are trusted)
    activations = limit if CONFIG_NAME in entry.files else None
    if weights:
        size = sum(w.stat().st_size for w in weights)
        limit = min(limit, size * _HEADROOM + (1 << 20))
    if not weights:
        if not random_init:
            raise WeightsError(
                f"{entry.name!r} has a {CONFIG_NAME} but no weights (*.safetensors not found); "
                "zoo.load(..., random_init=True) builds it with random weights, if that is "
                "what you want")
        model = build_sized(factory, config, limit, where, meta=False,
                            activations=activations)
    else:
        layout, paths = entry.layout, weights
        if layout is not None:  # a foreign layout: converted once per file, kept in the store
            fused = _converted(entry, comp, factory, config, weights)
            if fused is not None:
                layout, paths = None, [fused]
        state = read_safetensors(paths)
        _warn_nonfinite(entry, weights, state if paths is weights else None)
        model = build_loaded(factory, config, state, layout, limit=limit, where=where,
                             allow_cast=allow_cast, activations=activations)
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()


def _converted(entry: Entry, comp: Any, factory: Any, config: Any,
               paths: list[Path]) -> Path | None:
    """The model's own state dict converted from ``entry``'s foreign ``layout``, as a file
    derived once (``zoo.derived``) from the weights: keyed by the digests of the store blobs
    the view links to (verified by the fetch), or for a ``dir:`` folder (read in place, never
    hashed) by the files' paths, with their stat as the version; None for a view that links
    elsewhere."""
    from ._config import config_to_dict
    from ._derived import derived
    from ._weights import build_loaded, read_safetensors, state_dict_for_save

    version = ""
    if entry.name.startswith("dir:"):
        real = [os.path.realpath(p) for p in paths]
        source = hashlib.sha256("\0".join(real).encode()).hexdigest()
        version = " ".join(_file_version(r) for r in real)
    else:
        digests = [_blob_digest(p) for p in paths]
        if not all(digests):
            return None
        source = digests[0] if len(digests) == 1 else hashlib.sha256(
            "".join(f"{p.name} {d}\n" for p, d in zip(paths, digests, strict=True)).encode()
        ).hexdigest()
    report = REGISTRY.reports.get(comp.plugin)
    settings = hashlib.sha256(json.dumps(config_to_dict(config), sort_keys=True).encode())
    name = (f"{entry.component}/{entry.layout}@{comp.plugin}-"
            f"{report.version if report else ''}-{settings.hexdigest()[:16]}")

    def build() -> dict[str, Any]:
        model = build_loaded(factory, config, read_safetensors(paths), entry.layout)
        return state_dict_for_save(model)

    return derived(source, name, build, version)


def _blob_digest(path: Path) -> str:
    """The digest a view's link names (a store blob, verified by the fetch), else ""."""
    target = os.path.basename(os.readlink(path)) if path.is_symlink() else ""
    return target if re.fullmatch(r"[0-9a-f]{64}", target) else ""


def _file_version(path: str) -> str:
    """Size, mtime, ctime and inode of a file read in place: any write changes its ctime."""
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _config(entry: Entry, folder: Path, factory: Any, where: str) -> Any:
    from ._config import build_config, config_from_dict

    if CONFIG_NAME in entry.files and (folder / CONFIG_NAME).is_file():
        doc = read_config(folder / CONFIG_NAME, entry.name)
        if "zoo" in doc:
            try:
                return config_from_dict(factory.config_class, doc.get("config", {}))
            except ConfigError as e:
                raise ConfigError(f"{where}: field 'config': {e}") from None
    try:
        return build_config(factory, entry.preset, entry.config)
    except ZooError as e:
        raise ConfigError(f"{entry.name!r} ({entry.origin or 'catalogue'}): {e}") from None


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``), else the machine's memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _warn_nonfinite(entry: Entry, weights: list[Path], state: dict[str, Any] | None) -> None:
    """Warn about NaN/Inf weights; a file's scan is recorded (a blob's by its digest, a file
    read in place by its path and stat), so a warm load reads one line (``state``: the
    files' tensors, read here when None and a scan is needed)."""
    from ._derived import record_scan, recorded_scan
    from ._safetensors import safetensors_header
    from ._weights import nonfinite_in

    for path in weights:
        digest = _blob_digest(path)
        if digest:
            key = digest
            bad = _SCANNED.get(key)
            if bad is None:
                bad = STORE.scan(digest)
        else:  # a dir: file: its scan is kept for its version
            real = os.path.realpath(path)
            local, version = hashlib.sha256(real.encode()).hexdigest(), _file_version(real)
            key = f"{real} {version}"
            bad = _SCANNED.get(key)
            if bad is None:
                bad = recorded_scan(local, version)
        if bad is None:
            from ._weights import read_safetensors

            held = state if state is not None else read_safetensors([path])
            keys = set(safetensors_header(path) or {}) - {"__metadata__"}
            bad = nonfinite_in({k: held[k] for k in keys if k in held})
            if digest:
                STORE.record_scan(digest, bad)
            else:
                record_scan(local, version, bad)
        _SCANNED[key] = bad
        if bad:
            log.warning("zoo: %r: %s holds NaN or infinite values in %d tensor(s): %s",
                        entry.name, path.name, len(bad), ", ".join(bad[:5]))
