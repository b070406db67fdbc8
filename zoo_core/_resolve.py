"""The one resolve path: a reference -> a verified view of exactly the files it pins.

``resolve(ref)`` serves ``zoo.load``, ``zoo.load_tokenizer``, ``zoo.task`` (through ``load``),
``zoo push`` and ``zoo verify`` alike, for every kind of reference:

- a catalogue entry: its files, fetched and verified by the store;
- ``hf:org/repo@rev``: an entry built from the repo's ``config.json`` (its ``zoo.files`` and
  ``zoo.tokenizer.files``, or a foreign checkpoint's weights), fetched through the store like
  any other; a ``@<40-hex commit>`` is immutable, so each file's digest is pinned at its first
  download the Hub vouched for, and the entry is recorded for ``zoo verify``; a branch or tag
  is fetched and checked each time, never pinned;
- ``pkg:distribution/path``: the same, from a folder inside an installed distribution,
  pinned per installed version;
- ``dir:/path``: the files its ``config.json`` names, linked from the folder in place (the
  user's own files: not copied, not verified).

The folder returned is a view holding links to exactly those files, so a loader that lists
it sees nothing else. Loaders take the file names from the entry, never from a listing.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._catalog import CATALOG, Entry, check_file_name, parse_source
from ._errors import CatalogError, ConfigError, WeightsError, ZooError
from ._registry import KINDS, REGISTRY
from ._safetensors import refuse_pickle
from ._storage import CONFIG_NAME, STORE, WEIGHTS_NAME, folder_name

INDEX_NAME = "model.safetensors.index.json"
#: Tokenizer files that transformers, tokenizers and sentencepiece write beside a model.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt",
                   "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
#: Flags only the caller grants: never read from a file, a catalogue or a download.
CALLER_ONLY = frozenset({"trust_pattern", "random_init", "trust_remote_code", "allow_cast",
                         "max_bytes"})


@dataclass(frozen=True)
class Resolved:
    """An entry and its view (a folder of links to exactly ``entry.files``)."""

    entry: Entry
    folder: Path
    meta: dict[str, Any] = field(default_factory=dict)  # config.json's "zoo" section, if any


def resolve(ref: str, *, random_init: bool = False) -> Resolved:
    """The entry ``ref`` names and a verified view of its files.

    ``random_init``: a foreign ``hf:``/``dir:`` checkpoint without weights still resolves
    (to its ``config.json`` alone).
    """
    if not isinstance(ref, str):
        raise ZooError(f"expected a reference (entry name, 'hf:…' or 'dir:…'), got {ref!r}")
    if ref.startswith(("hf:", "pkg:")):
        return _fetched(ref, random_init)
    if ref.startswith("dir:"):
        return _local(ref)
    kind = ref.partition(":")[0]
    if ":" in ref and kind in KINDS:
        raise ZooError(f"{ref!r} is a component, not an entry: zoo.create({ref!r}, preset=...) "
                       "builds it with random weights; zoo.list() shows pretrained entries")
    entry = CATALOG.get(ref)
    return Resolved(entry, STORE.fetch(entry))


def read_config(path: Path, name: str) -> dict[str, Any]:
    """A ``config.json`` as a dict; its ``zoo`` section, if any, checked."""
    where = f"{name!r}: {CONFIG_NAME}"
    try:
        doc = json.loads(path.read_text("utf-8"))
    except RecursionError:
        raise ConfigError(f"{where} is nested too deeply to read; rewrite it with "
                          "model.save_pretrained()") from None
    except (UnicodeDecodeError, ValueError) as e:
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{where} is not valid JSON ({text[:200]}); rewrite it with "
                          "model.save_pretrained()") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where} must hold a JSON object, got {short(doc)}")
    if "zoo" not in doc:
        return doc
    meta, config = doc["zoo"], doc.get("config", {})
    if not isinstance(meta, dict):
        raise ConfigError(f"{where}: field 'zoo' must be an object, got {short(meta)}")
    comp = meta.get("component")
    if not isinstance(comp, str) or comp.partition(":")[0] not in KINDS \
            or not comp.partition(":")[2]:
        raise ConfigError(f"{where}: field 'zoo.component' must read 'kind:name' with kind one "
                          f"of {', '.join(KINDS)}, got {short(comp)}")
    tok = meta.get("tokenizer") or {}
    if not isinstance(tok, dict):
        raise ConfigError(f"{where}: field 'zoo.tokenizer' must be an object, got {short(tok)}")
    for key, files in (("zoo.files", meta.get("files", [])),
                       ("zoo.tokenizer.files", tok.get("files", []))):
        if not isinstance(files, list):
            raise ConfigError(f"{where}: field {key!r} must be a list of file names, "
                              f"got {short(files)}")
        for f in files:
            try:
                check_file_name(f)
            except CatalogError as e:
                raise ConfigError(f"{where}: field {key!r}: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: field 'config' must be an object, got {short(config)}")
    return doc


def check_trust(entry: Entry) -> None:
    """Refuse an entry whose config (from a catalogue or a file) grants itself trust."""
    granted = sorted(CALLER_ONLY & set(entry.config))
    if granted:
        raise ConfigError(
            f"{entry.name!r} ({entry.origin or 'catalogue'}): field 'config.{granted[0]}' is "
            "refused: trust is granted only by the caller's arguments, never by a file, a "
            "catalogue or a download; remove the field and pass the option yourself if you "
            "trust the files")


def _listed(doc: dict[str, Any], name: str) -> tuple[list[str], Entry | None]:
    """The files ``config.json`` names, and the entry it describes (component, config…)."""
    if "zoo" in doc:
        meta = doc["zoo"]
        tok = meta.get("tokenizer") or {}
        files = [*meta.get("files", []), *tok.get("files", [])]
        entry = Entry(name=name, component=meta["component"], config=doc.get("config", {}))
        return list(dict.fromkeys(f for f in files if f != CONFIG_NAME)), entry
    found = REGISTRY.foreign_config(doc)
    if not found:
        raise ZooError(f"{name!r}: {CONFIG_NAME} was not written by zoo and no installed plugin "
                       f"recognises it (model_type={short(doc.get('model_type'))}); see "
                       "`zoo plugins`")
    entry = Entry(name=name, component=found["component"], config=found.get("config", {}),
                  layout=found.get("layout"))
    return [WEIGHTS_NAME], entry


def store_name(ref: str) -> tuple[str, bool]:
    """The store's name of an ``hf:``/``pkg:`` reference, and whether its files are pinned:
    an ``hf:`` commit is immutable; a ``pkg:`` folder is pinned per installed version."""
    try:
        source = parse_source(ref)
    except CatalogError as e:
        raise CatalogError(f"{ref!r}: {e}") from None
    if source.scheme == "pkg":
        import importlib.metadata as md

        dist, _, rel = source.location.partition("/")
        try:
            version = md.version(dist)
        except md.PackageNotFoundError:
            raise ZooError(f"{ref!r}: distribution {dist!r} is not installed "
                           f"(pip install {dist})") from None
        return f"pkg:{dist}=={version}/{rel}", True
    return str(source), len(source.revision or "") == 40


def _fetched(ref: str, random_init: bool) -> Resolved:
    source = parse_source(ref)
    name, pinned = store_name(ref)
    first = Entry(name=name, component="", files={CONFIG_NAME: ""}, sources=(source,))
    config_blob = STORE.ready(first, CONFIG_NAME, STORE.pins(first)[CONFIG_NAME], pinned)
    doc = read_config(config_blob, name)
    files, described = _listed(doc, name)
    entry = replace(described, files={CONFIG_NAME: "", **{f: "" for f in files}},
                    sources=(source,), origin=name)
    if pinned:
        STORE.remember(entry)
    try:
        return Resolved(entry, STORE.fetch(entry, record=pinned), doc.get("zoo", {}))
    except ZooError:
        if not random_init or "zoo" in doc:
            raise
    bare = replace(entry, files={CONFIG_NAME: ""})  # foreign, no weights: random init asked
    return Resolved(bare, STORE.fetch(bare, record=pinned))


def _local(ref: str) -> Resolved:
    folder = Path(ref[4:]).expanduser().absolute()
    if not folder.is_dir():
        raise ZooError(f"{ref!r}: {str(folder)!r} is not a folder")
    config = folder / CONFIG_NAME
    if not _regular(config):
        raise ZooError(f"{ref!r} has no {CONFIG_NAME}; write one with zoo.push() or "
                       "model.save_pretrained()")
    doc = read_config(config, ref)
    files, described = _listed(doc, ref)
    if "zoo" not in doc:  # a foreign checkpoint: one file, or the shards its index names,
        files = _foreign_weights(folder, ref)  # and the tokenizer files saved beside them
        files += [f for f in TOKENIZER_FILES if _regular(folder / f)]
    present = {f: folder / f for f in [CONFIG_NAME, *files] if _regular(folder / f)}
    entry = replace(described, files={f: "" for f in [CONFIG_NAME, *files]}, origin=str(folder))
    view = STORE.local_view(f"dir:{folder}", present)
    return Resolved(entry, view, doc.get("zoo", {}))


def _foreign_weights(folder: Path, ref: str) -> list[str]:
    if _regular(folder / WEIGHTS_NAME):
        return [WEIGHTS_NAME]
    if _regular(folder / INDEX_NAME):
        try:
            index = json.loads((folder / INDEX_NAME).read_text("utf-8"))
            shards = sorted(set(index["weight_map"].values()))
            for s in shards:
                check_file_name(s)
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError,
                CatalogError) as e:
            raise ConfigError(f"{ref!r}: {INDEX_NAME} does not map tensors to shard files "
                              f"({type(e).__name__}: {e}); rewrite it") from None
        return [INDEX_NAME, *shards]
    for pickled in ("pytorch_model.bin", "model.pt", "model.pth"):
        if _regular(folder / pickled):
            refuse_pickle(folder / pickled)
    return [WEIGHTS_NAME]


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def entry_of(ref: str) -> Entry:
    """The entry of a reference the store holds, without fetching: a catalogue entry, or an
    ``hf:`` load recorded by the store."""
    if not ref.startswith(("hf:", "pkg:")):
        return CATALOG.get(ref)
    name = store_name(ref)[0]
    for folder, record in STORE.held():
        if folder == folder_name(name) and record and record.get("name") == name:
            return _recorded_entry(record)
    raise ZooError(f"{ref!r} is not in the zoo store; zoo.load({ref!r}) fetches and pins it")


def _recorded_entry(record: dict[str, Any]) -> Entry:
    try:
        files = {check_file_name(f): "" for f in record["files"]}
        sources = tuple(parse_source(s) for s in record["sources"])
        name = str(record["name"])
    except (KeyError, TypeError, CatalogError) as e:
        raise ZooError(f"a damaged entry record in the zoo store ({e}); remove its folder "
                       "under entries/ and load it again") from None
    return Entry(name=name, component="", files=files, sources=sources)


def held_entries() -> list[Entry]:
    """Every entry the store holds files of: catalogue entries and recorded ``hf:`` loads."""
    by_folder = {folder_name(n): e for n, e in CATALOG.entries().items() if e.files}
    out = []
    for folder, record in STORE.held():
        if record is not None:
            out.append(_recorded_entry(record))
        elif folder in by_folder:
            out.append(by_folder[folder])
    return out


def verify(ref: str | None = None, *, deep: bool = False) -> list[dict[str, Any]]:
    """Rows ``{entry, file, expected, status, actual}`` re-hashing ``ref``'s files, or every
    entry the store holds; ``deep`` also scans weights for NaN and infinite values."""
    entries = [entry_of(ref)] if ref else held_entries()
    STORE.clean()  # temporary files of processes that are gone
    rows = []
    for entry in entries:
        for row in STORE.verify(entry):
            if deep and row["status"] == "ok" and row["file"].endswith(".safetensors"):
                from ._weights import nonfinite

                bad = nonfinite(STORE.blob(row["expected"]))
                if bad:
                    row["status"] = f"non-finite values in {len(bad)} tensor(s): {bad[:3]}"
            rows.append({"entry": entry.name, **row})
    return rows


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def weights_of(entry: Entry, folder: Path) -> list[Path]:
    """The entry's weight files present in its view (shards in order); none is an error
    only when some are missing."""
    names = sorted(f for f in entry.files if f.endswith(".safetensors"))
    present = [f for f in names if (folder / f).is_file()]
    if present and len(present) < len(names):
        missing = sorted(set(names) - set(present))
        raise WeightsError(f"{entry.name!r}: weight file(s) {missing} listed in "
                           f"{CONFIG_NAME} are not in {str(folder)!r}")
    return [folder / f for f in present]
