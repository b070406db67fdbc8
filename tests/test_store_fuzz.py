"""Fuzzing the store's inputs: catalogue TOML, pins files and safetensors headers.

Whatever the input, only a ``ZooError`` escapes, and a sentinel folder beside the store is
never changed (no file written, linked or removed outside the store root).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo_core as zoo
from zoo_core._catalog import parse_catalog_text
from zoo_core._storage import Store

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

NAMES = st.one_of(st.sampled_from([".", "..", "", "a/..", "../x", "blobs", "a/b", "A", "a--b",
                                   "x/y/z", "tmp", "locks", "entries/x", "~", "a b", "é"]),
                  st.text(min_size=0, max_size=12))
FILES = st.one_of(st.sampled_from(["model.safetensors", "..", ".", "../x", "/etc/passwd",
                                   "a/../../b", "blobs/" + "0" * 64, "pins.json", "a\\b",
                                   "x/", "sub/w.bin"]),
                  st.text(max_size=12))
DIGESTS = st.one_of(st.sampled_from(["", "0" * 64, "../../x", "G" * 64]), st.text(max_size=8))
SCALARS = st.one_of(st.text(max_size=10), st.integers(-5, 5), st.booleans())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=6), inner,
                                                                      max_size=3)), max_leaves=6)


@contextmanager
def _world() -> Iterator[tuple[Path, Store, Path, dict[str, bytes]]]:
    """A fresh store root and a sentinel folder beside it (with a file the store could fetch)."""
    with tempfile.TemporaryDirectory(prefix="zoo-fuzz-") as tmp:
        base = Path(tmp)
        sentinel = base / "sentinel"
        sentinel.mkdir()
        files = {"model.safetensors": b"\x08" + b"\0" * 7 + b'{"a":1} ', "keep.txt": b"mine"}
        for name, data in files.items():
            (sentinel / name).write_bytes(data)
        yield base, Store(base / "zoo"), sentinel, files


def _untouched(base: Path, sentinel: Path, files: dict[str, bytes]) -> None:
    assert sorted(p.name for p in base.iterdir()) in (["sentinel"], ["sentinel", "zoo"])
    assert sorted(p.name for p in sentinel.iterdir()) == sorted(files)
    for name, data in files.items():
        assert (sentinel / name).read_bytes() == data and not (sentinel / name).is_symlink()
    zoo_root = base / "zoo"
    for p in zoo_root.rglob("*") if zoo_root.exists() else ():
        if p.is_symlink():  # every link the store made points into its own blobs/
            target = os.path.realpath(p)
            assert target.startswith(os.path.realpath(zoo_root) + os.sep), (p, target)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"


@st.composite
def catalogues(draw: st.DrawFn) -> tuple[str, str]:
    """A catalogue text: mostly well-formed entries with hostile names, files and sources."""
    sentinel = "{SENTINEL}"
    entries = {}
    for _ in range(draw(st.integers(1, 3))):
        raw: dict[str, Any] = {"component": draw(st.sampled_from(["model:toy-mlp", "x", ""]))}
        files = draw(st.dictionaries(FILES, DIGESTS, max_size=2))
        if files:
            raw["files"] = files
        raw["sources"] = draw(st.lists(st.one_of(
            st.sampled_from([f"dir:{sentinel}", f"dir:{sentinel}/..", "pkg:zoo-core/zoo_core",
                             "hf:org/repo@main", "hf:../x", "pkg:x/../../y"]),
            st.text(max_size=10)), max_size=2))
        if draw(st.booleans()):
            raw[draw(st.sampled_from(["tags", "convert", "config", "colour", "preset"]))] = \
                draw(VALUES)
        entries[draw(NAMES)] = raw
    body = "\n".join(f"{json.dumps(n)} = {_toml(raw)}" for n, raw in entries.items())
    junk = draw(st.sampled_from(["", "entries = 5\n", "schema = 2\n", "[x\n", "\x00"]))
    return "schema = 1\n" + junk + "[entries]\n" + body + "\n", sentinel


@FUZZ
@given(doc=catalogues())
def test_fuzzed_catalogues_raise_only_zoo_errors(doc: tuple[str, str], offline) -> None:
    text, marker = doc
    with _world() as (base, store, sentinel, files):
        try:
            entries = parse_catalog_text(text.replace(marker, str(sentinel)), "fuzz.toml")
        except zoo.ZooError:
            entries = {}
        for entry in entries.values():
            for action in (store.fetch, store.verify):
                try:
                    action(entry)
                except zoo.ZooError:
                    pass
        _untouched(base, sentinel, files)


@FUZZ
@given(pins=st.one_of(st.binary(max_size=40), st.builds(json.dumps, VALUES),
                      st.builds(lambda f, d: json.dumps({"files": {f: d}}), FILES, DIGESTS),
                      st.builds(lambda f, d: json.dumps({"files": {}, "sources": {f: d}}),
                                FILES, DIGESTS)))
def test_fuzzed_pins_files_raise_only_zoo_errors(pins: Any, offline) -> None:
    with _world() as (base, store, sentinel, files):
        entry = parse_catalog_text(
            'schema = 1\n[entries.toy]\ncomponent = "model:toy-mlp"\n'
            f'sources = ["dir:{sentinel}"]\nfiles = {{ "model.safetensors" = "" }}\n'
            'convert = {}\n', "fuzz.toml")["toy"]
        pf = store.snapshot("toy").parent / "pins.json"
        pf.parent.mkdir(parents=True)
        pf.write_bytes(pins if isinstance(pins, bytes) else pins.encode())
        for action in (store.fetch, store.verify, store.pins):
            try:
                action(entry)
            except zoo.ZooError:
                pass
        _untouched(base, sentinel, files)


DTYPES = st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "BOOL", "F64", "X9", "", 3])
TENSOR = st.fixed_dictionaries({
    "dtype": DTYPES,
    "shape": st.one_of(st.lists(st.integers(-2, 5), max_size=3), st.just("3"),
                       st.just([2 ** 62, 2 ** 62])),
    "data_offsets": st.one_of(st.lists(st.integers(-1, 64), min_size=0, max_size=3),
                              st.just([0, 2 ** 63])),
})


@st.composite
def safetensors_files(draw: st.DrawFn) -> bytes:
    header: Any = draw(st.one_of(
        st.dictionaries(st.text(max_size=6), TENSOR, max_size=3),
        st.dictionaries(st.sampled_from(["__metadata__", "w"]), VALUES, max_size=2), VALUES))
    raw = json.dumps(header).encode()
    if draw(st.booleans()):
        raw = raw[:draw(st.integers(0, len(raw)))]
    n = draw(st.one_of(st.just(len(raw)), st.integers(0, 2 ** 64 - 1), st.just(640)))
    return struct.pack("<Q", n) + raw + draw(st.binary(max_size=64))


@FUZZ
@given(data=safetensors_files())
def test_fuzzed_safetensors_headers_raise_only_zoo_errors(data: bytes, toy, offline) -> None:
    with _world() as (base, store, sentinel, files):
        folder = base / "zoo" / "src"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        entry = parse_catalog_text(
            'schema = 1\n[entries.toy]\ncomponent = "model:toy-mlp"\npreset = "tiny"\n'
            f'sources = ["dir:{folder}"]\nfiles = {{ "model.safetensors" = "{digest}" }}\n',
            "fuzz.toml")["toy"]
        from zoo_core._loading import instantiate

        try:
            snap = store.fetch(entry)
            instantiate(entry, snap)
        except zoo.ZooError:
            pass
        _untouched(base, sentinel, files)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    torch.set_num_threads(1)
