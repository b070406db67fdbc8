"""``zoo.load``: a catalogue entry, ``hf:org/repo@rev`` or ``dir:/path`` made ready to use.

Untrusted input is checked before anything is built: a ``config.json`` must be a JSON object
whose ``zoo`` section names a component and valid file names; its ``config`` fields are
type-checked against the config dataclass (``config_from_dict``), and the model is first
built on the ``meta`` device, so a negative or huge size is a ``ConfigError`` instead of a
crash or an attempt to allocate terabytes. A ``dir:``/``hf:`` model without weights is an
error unless the caller asks for ``random_init=True``.

``hf:`` loads go through the store: a ``@<40-hex commit>`` revision is immutable, so the
digests of its files are pinned on first download and checked on every later load (like a
catalogue entry with ``""`` digests); a branch or tag is fetched again each time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._catalog import CATALOG, Entry, Source, check_file_name, parse_source
from ._errors import CatalogError, ConfigError, WeightsError, ZooError
from ._registry import KINDS, REGISTRY
from ._storage import CONFIG_NAME, STORE, WEIGHTS_NAME

_HEADROOM = 4  # a model may hold its weights in a dtype up to 4x wider than the file's


def load(name: str, *, device: Any = None, dtype: Any = None, random_init: bool = False) -> Any:
    """A ready component from a catalogue entry, ``hf:org/repo@rev`` or ``dir:/path``.

    Files are fetched from the entry's sources in order and verified against their sha256
    before use. Models come back in eval mode. ``random_init=True`` accepts a ``dir:`` or
    ``hf:`` model that has a ``config.json`` but no weights (otherwise an error).

    Example:
        >>> model = zoo.load("all-minilm-l6-v2")
        >>> tok = zoo.load("bert-base-uncased")
    """
    if not isinstance(name, str):
        raise ZooError(f"zoo.load() takes a name, got {name!r}")
    if name.startswith("hf:"):
        try:
            source = parse_source(name)
        except CatalogError as e:
            raise CatalogError(f"zoo.load({name!r}): {e}") from None
        folder = _fetch_hub_repo(source, random_init)
        return _from_folder(folder, name, device, dtype, random_init)
    if name.startswith("dir:"):
        folder = Path(name[4:]).expanduser()
        if not folder.is_dir():
            raise ZooError(f"{name!r}: {str(folder)!r} is not a folder")
        return _from_folder(folder, name, device, dtype, random_init)
    kind = name.partition(":")[0]
    if ":" in name and kind in KINDS:
        raise ZooError(f"{name!r} is a component, not an entry: zoo.create({name!r}, preset=...) "
                       "builds it with random weights; zoo.list() shows pretrained entries")
    entry = CATALOG.get(name)
    folder = STORE.fetch(entry)
    return _instantiate(entry, folder, device, dtype, random_init=True)


def read_config(path: Path, name: str) -> dict[str, Any]:
    """A ``config.json`` as a dict; its ``zoo`` section, if any, checked."""
    where = f"{name!r}: {CONFIG_NAME}"
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{where} is not valid JSON ({e}); rewrite it with "
                          "model.save_pretrained()") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where} must hold a JSON object, got {_short(doc)}")
    if "zoo" not in doc:
        return doc
    meta, config = doc["zoo"], doc.get("config", {})
    if not isinstance(meta, dict):
        raise ConfigError(f"{where}: field 'zoo' must be an object, got {_short(meta)}")
    comp = meta.get("component")
    if not isinstance(comp, str) or comp.partition(":")[0] not in KINDS \
            or not comp.partition(":")[2]:
        raise ConfigError(f"{where}: field 'zoo.component' must read 'kind:name' with kind one "
                          f"of {', '.join(KINDS)}, got {_short(comp)}")
    files = meta.get("files", [])
    if not isinstance(files, list):
        raise ConfigError(f"{where}: field 'zoo.files' must be a list of file names, "
                          f"got {_short(files)}")
    for f in files:
        try:
            check_file_name(f)
        except CatalogError as e:
            raise ConfigError(f"{where}: field 'zoo.files': {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: field 'config' must be an object, got {_short(config)}")
    return doc


def _instantiate(entry: Entry, folder: Path, device: Any, dtype: Any,
                 random_init: bool = False) -> Any:
    comp = REGISTRY.get(entry.component)
    factory = comp.load()
    if comp.kind != "model":
        return factory.load(folder, **entry.config)
    from ._config import build_config, config_from_dict

    config_file = folder / CONFIG_NAME
    config, where = None, f"{entry.name!r}: {CONFIG_NAME}"
    if CONFIG_NAME in entry.files and config_file.is_file():
        doc = read_config(config_file, entry.name)
        if "zoo" in doc:
            try:
                config = config_from_dict(factory.config_class, doc.get("config", {}))
            except ConfigError as e:
                raise ConfigError(f"{where}: field 'config': {e}") from None
    weights = sorted(f for f in entry.files if f.endswith(".safetensors"))
    missing = [w for w in weights if not (folder / w).is_file()]
    if missing and len(missing) < len(weights):
        raise WeightsError(f"{entry.name!r}: weight file(s) {missing} listed in "
                           f"{CONFIG_NAME} are not in {str(folder)!r}")
    if missing:
        weights = []
    if config is None:
        config = build_config(factory, entry.preset, entry.config)
    elif weights or random_init:  # a config from a file: sizes checked before allocating
        size = sum((folder / w).stat().st_size for w in weights if (folder / w).is_file())
        _check_size(factory, config, size * _HEADROOM + (1 << 20) if weights else None, where)
    if not weights:
        if not random_init:
            raise WeightsError(
                f"{entry.name!r} has a {CONFIG_NAME} but no weights "
                f"({', '.join(map(repr, missing)) or '*.safetensors'} not found); "
                "zoo.load(..., random_init=True) builds it with random weights, if that is "
                "what you want")
        model = factory(config)
    else:
        from ._weights import build_loaded, read_safetensors

        layout, paths = entry.layout, [folder / w for w in weights]
        if layout is not None:  # a foreign layout: converted once per file, kept in the store
            fused = _converted(entry, comp, factory, config, paths)
            if fused is not None:
                layout, paths = None, [fused]
        model = build_loaded(factory, config, read_safetensors(paths), layout)
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()


def _converted(entry: Entry, comp: Any, factory: Any, config: Any,
               paths: list[Path]) -> Path | None:
    """The model's own state dict converted from ``entry``'s foreign ``layout``, as a file
    derived once (``zoo.derived``) from the verified weights; None when their digests are
    not pinned (a ``dir:`` folder)."""
    import hashlib

    from ._config import config_to_dict
    from ._derived import derived
    from ._weights import build_loaded, read_safetensors, state_dict_for_save

    if entry.name.startswith(("dir:", "hf:")):  # read in place, or pinned by the Hub's commit
        return None
    pins = STORE.pins(entry)
    digests = [pins.get(p.name, "") for p in paths]
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

    return derived(source, name, build)


def _check_size(factory: Any, config: Any, limit: int | None, where: str) -> None:
    """Build the model on the meta device (no memory) and refuse it if it cannot be built or
    would hold more bytes than ``limit`` (default: the machine's memory)."""
    import torch

    try:
        with torch.device("meta"):
            probe = factory(config)
        nbytes = sum(t.numel() * t.element_size() for t in probe.state_dict().values())
    except Exception as e:  # a negative size, an inconsistent config ...
        text = str(e).strip().splitlines()
        raise ConfigError(f"{where}: field 'config' cannot build {factory.__name__} "
                          f"({type(e).__name__}: {text[0] if text else ''}); fix the config "
                          "values") from None
    if limit is None:
        limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        what = "the machine's memory"
    else:
        what = "what its weight files can fill"
    if nbytes > limit:
        raise ConfigError(f"{where}: field 'config' asks for a {factory.__name__} of "
                          f"{nbytes / 2**30:.1f} GiB, more than {what} ({limit / 2**30:.1f} "
                          "GiB); check its sizes")


def _from_folder(folder: Path, name: str, device: Any, dtype: Any, random_init: bool) -> Any:
    """A folder laid out like a Hub repo: ours (``zoo`` metadata) or a recognised foreign one."""
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        raise ZooError(f"{name!r} has no {CONFIG_NAME}; write one with zoo.push() or "
                       "model.save_pretrained()")
    doc = read_config(config_file, name)
    if "zoo" in doc:
        meta = doc["zoo"]
        entry = Entry(name=name, component=meta["component"], config=doc.get("config", {}),
                      files={f: "" for f in [CONFIG_NAME, *meta.get("files", [])]},
                      origin=str(folder))
        return _instantiate(entry, folder, device, dtype, random_init)
    found = REGISTRY.foreign_config(doc)
    if not found:
        raise ZooError(f"{name!r}: {CONFIG_NAME} was not written by zoo and no installed plugin "
                       f"recognises it (model_type={_short(doc.get('model_type'))}); see "
                       "`zoo plugins`")
    weights = sorted(p.name for p in folder.glob("*.safetensors"))
    pickles = sorted(folder.glob("*.bin"))
    if not weights and pickles:
        from ._storage import refuse_pickle

        refuse_pickle(pickles[0])
    entry = Entry(name=name, component=found["component"], config=found.get("config", {}),
                  files={w: "" for w in weights}, layout=found.get("layout"), origin=str(folder))
    return _instantiate(entry, folder, device, dtype, random_init)


def _fetch_hub_repo(source: Source, random_init: bool) -> Path:
    """The files of a ``zoo.push``-ed (or foreign) Hub repo, through the store."""
    name = str(source)
    pinned = bool(source.revision) and len(source.revision or "") == 40
    first = Entry(name=name, component="", files={CONFIG_NAME: ""}, sources=(source,))
    folder = STORE.fetch(first, record=pinned)
    doc = read_config(folder / CONFIG_NAME, name)
    listed = doc["zoo"].get("files", []) if "zoo" in doc else [WEIGHTS_NAME]
    files = {CONFIG_NAME: "", **{f: "" for f in listed}}
    try:
        return STORE.fetch(Entry(name=name, component="", files=files, sources=(source,)),
                           record=pinned)
    except ZooError:
        if not random_init or "zoo" in doc:
            raise
        return folder  # a foreign config without weights, and random init was asked for


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
