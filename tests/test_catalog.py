"""Catalogue schema: errors name the file, the entry and the field."""

from __future__ import annotations

import json

import pytest

import zoo_core as zoo
from zoo_core import parse_source

GOOD = '''
[entries.toy-a]
component = "model:toy-mlp"
preset = "tiny"
task = "regression"
tags = ["toy"]
sources = ["dir:/tmp/nowhere", "hf:org/repo@0123456789abcdef0123456789abcdef01234567"]
files = { "model.safetensors" = "" }
'''


def test_user_catalog_entries_are_listed(toy: str, catalog) -> None:
    catalog(GOOD + '\n[entries.toy-10]\ncomponent = "model:toy-mlp"\n'
            '\n[entries.toy-9]\ncomponent = "model:toy-mlp"\n')
    assert zoo.list("toy-*") == ["toy-9", "toy-10", "toy-a"]  # natural sort
    assert zoo.list("toy-*", pretrained=True) == ["toy-a"]
    info = zoo.info("toy-a")
    assert info["sources"][1] == "hf:org/repo@0123456789abcdef0123456789abcdef01234567"
    assert info["origin"].endswith("catalog.toml")


@pytest.mark.parametrize("body, field", [
    ('[entries.x]\npreset = "tiny"\n', "'component'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\ntags = "toy"\n', "'tags'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\ncolour = "red"\n', "'colour'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\nsources = ["dir:/a"]\n'
     'files = { "w.safetensors" = "abc" }\n', "'files'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\nfiles = { "w.safetensors" = "" }\n',
     "'sources'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\nsources = ["s3://bucket/x"]\n', "'sources'"),
])
def test_schema_errors_name_file_entry_and_field(catalog, body: str, field: str) -> None:
    path = catalog(body)
    with pytest.raises(zoo.CatalogError) as err:
        zoo.list()
    msg = str(err.value)
    assert str(path) in msg and "'x'" in msg and field in msg


def test_schema_version_is_checked(tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text("schema = 7\n")
    monkeypatch.setenv("ZOO_CATALOG", str(path))
    zoo.CATALOG.invalidate()
    try:
        with pytest.raises(zoo.CatalogError, match="'schema' must be 1"):
            zoo.list()
    finally:
        monkeypatch.delenv("ZOO_CATALOG")
        zoo.CATALOG.invalidate()


@pytest.mark.parametrize("bad", [
    "hf:../etc/passwd", "hf:org/../../x", "hf:/abs/path", "hf:https://evil.example/x",
    "hf:org/repo/extra", "hf:", "pkg:dist/../../x", "ftp:x",
])
def test_bad_sources_are_refused(bad: str) -> None:
    with pytest.raises(zoo.CatalogError, match="invalid"):
        parse_source(bad)


def test_repo_id_checked_on_push(toy: str) -> None:
    model = zoo.create("model:toy-mlp", preset="tiny")
    for bad in ("../x", "/abs", "https://host/x", "a/b/c"):
        with pytest.raises(zoo.CatalogError, match="invalid Hub repo id"):
            zoo.push(model, bad)


def test_unknown_entry_suggests(toy: str, catalog) -> None:
    catalog(GOOD)
    with pytest.raises(zoo.UnknownNameError, match="did you mean 'toy-a'"):
        zoo.load("toy-b")
    with pytest.raises(zoo.ZooError, match="zoo.create"):
        zoo.load("model:toy-mlp")


def test_aliases_and_case_find_an_entry_when_unambiguous(toy: str, catalog) -> None:
    catalog(GOOD + '\n[entries.Toy-B]\ncomponent = "model:toy-mlp"\n'
            'aliases = ["someone/Toy-Model"]\n\n[entries.toy-b]\ncomponent = "model:toy-mlp"\n')
    get = zoo.CATALOG.get
    assert get("someone/Toy-Model").name == get("SOMEONE/toy-model").name == "Toy-B"
    assert get("TOY-A").name == "toy-a" and get("toy-b").name == "toy-b"
    with pytest.raises(zoo.CatalogError, match=r"\['Toy-B', 'toy-b'\]"):
        get("TOY-B")  # two entries differ only in case: the exact name is needed
    catalog('[entries.x]\ncomponent = "model:toy-mlp"\naliases = ["../up"]\n')
    with pytest.raises(zoo.CatalogError, match="'aliases'"):
        zoo.list()


# -- adversarial catalogues (issue 22) --------------------------------------------------------


def _user_catalog(tmp_path, monkeypatch, data: bytes):
    path = tmp_path / "c.toml"
    path.write_bytes(data)
    monkeypatch.setenv("ZOO_CATALOG", str(path))
    zoo.CATALOG.invalidate()
    return path


@pytest.mark.parametrize("data, says", [
    (b'schema = 1\n[entries.x]\ncomponent = "model:\xff"\n', "not UTF-8"),
    (b"schema = 1\nx = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply"),
    (b"schema = 1\nx = " + b"{a=" * 50_000 + b"1" + b"}" * 50_000 + b"\n", "nested too deeply"),
])
def test_unreadable_user_catalogue_is_a_catalog_error(tmp_path, monkeypatch, data: bytes,
                                                      says: str) -> None:
    """Invalid UTF-8 raised UnicodeDecodeError, deep nesting RecursionError: both tracebacks."""
    path = _user_catalog(tmp_path, monkeypatch, data)
    try:
        with pytest.raises(zoo.CatalogError, match=says) as caught:
            zoo.list()
        assert str(path) in str(caught.value)
    finally:
        monkeypatch.delenv("ZOO_CATALOG")
        zoo.CATALOG.invalidate()


def test_user_catalogue_that_is_a_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_CATALOG", str(tmp_path))
    zoo.CATALOG.invalidate()
    try:
        with pytest.raises(zoo.CatalogError, match="ZOO_CATALOG"):
            zoo.list()
    finally:
        monkeypatch.delenv("ZOO_CATALOG")
        zoo.CATALOG.invalidate()


@pytest.mark.parametrize("name", ["gpt2\n", "org/name\n"])
def test_entry_names_with_a_trailing_newline_are_refused(name: str) -> None:
    with pytest.raises(zoo.CatalogError, match="invalid entry name"):
        parse_catalog_text(f'schema = 1\n[entries."{name.encode("unicode_escape").decode()}"]'
                               '\ncomponent = "model:x"\n', "c.toml")


# -- fuzz: whatever the text, a catalogue either parses or raises CatalogError ----------------

import os  # noqa: E402
import tempfile  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def parse_catalog_text(text: str, origin: str) -> dict:
    """The user catalogue's entries, read through ZOO_CATALOG like any user's."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, origin)
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        old = os.environ.get("ZOO_CATALOG")
        os.environ["ZOO_CATALOG"] = path
        zoo.CATALOG.invalidate()
        try:
            return {n: e for n, e in zoo.CATALOG.entries().items() if e.origin == path}
        finally:
            if old is None:
                del os.environ["ZOO_CATALOG"]
            else:
                os.environ["ZOO_CATALOG"] = old
            zoo.CATALOG.invalidate()

_FIELDS = ["component", "preset", "config", "task", "tokenizer", "license", "paper", "tags",
           "layout", "sources", "files", "summary", "convert", "plugin", "colour"]
_SCALARS = st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.floats(
    allow_nan=False, allow_infinity=False))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


def _toml(value) -> str:
    """A TOML literal of a value (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + "}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.dictionaries(
    st.one_of(st.sampled_from(["gpt2", "a/b", "..", "a b", "", "x" * 300]), st.text(max_size=12)),
    st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=6), max_size=3))
def test_fuzz_structured_catalogues(entries) -> None:
    text = "schema = 1\n" + "".join(
        f"[entries.{_toml(name)}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in body.items())
        for name, body in entries.items())
    try:
        parsed = parse_catalog_text(text, "fuzz.toml")
    except zoo.CatalogError as e:
        assert "fuzz.toml" in str(e)
    else:
        for name, entry in parsed.items():
            assert entry.name == name and ":" in entry.component


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_any_text_is_a_catalogue_or_a_catalog_error(text: str) -> None:
    try:
        parse_catalog_text(text, "fuzz.toml")
    except zoo.CatalogError:
        pass


# -- one catalogue ---------------------------------------------------------------------------


def test_every_entry_of_this_repository_lives_in_registry_toml() -> None:
    """No plugin of this repository builds entries in hook code; each registry.toml entry
    names the distribution whose plugin serves its component."""
    from_hooks = [(plugin, raw["name"]) for plugin, raw in zoo.REGISTRY.catalog_entries()]
    assert from_hooks == []
    reports = {r.distribution: r for r in zoo.REGISTRY.reports.values()}
    shipped = [e for e in zoo.CATALOG.entries().values() if e.origin == "registry.toml"]
    assert {"mtcnn", "face-verify", "tekken-240718", "gpt2"} <= {e.name for e in shipped}
    for entry in shipped:
        assert entry.plugin in reports, entry.name
        assert entry.component in reports[entry.plugin].components, entry.name


def test_an_entry_whose_plugin_is_missing_is_listed_unavailable(tmp_path) -> None:
    from tests.test_cli import zoo_cli

    listed = zoo_cli(tmp_path, "--json", "list", ZOO_PLUGINS="tokenizers")
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["mtcnn"]["available"] is False and rows["mtcnn"]["plugin"] == "zoo-face"
    assert rows["gpt2"]["available"] is True
    piped = zoo_cli(tmp_path, "list", "mtcnn", ZOO_PLUGINS="tokenizers").stdout
    assert "[unavailable: install zoo-face]" in piped
    ran = zoo_cli(tmp_path, "run", "mtcnn", "x.jpg", ZOO_PLUGINS="tokenizers")
    assert ran.returncode == 1
    assert "'model:mtcnn' is served by plugin 'zoo-face'" in ran.stderr


def test_loading_an_unavailable_entry_names_the_plugin(monkeypatch) -> None:
    monkeypatch.setenv("ZOO_PLUGINS", "tokenizers")
    registry = type(zoo.REGISTRY)()
    with pytest.raises(zoo.UnknownNameError, match="served by plugin 'zoo-transformer'"):
        registry.get("model:bert-sentence-embedding")


def test_a_loaded_model_carries_its_entry_and_finds_its_own_tokenizer(catalog) -> None:
    """Two entries serve the sentence-embedding component with different tokenizers: each
    model takes its own entry's (the component used to scan the whole catalogue, and gave up
    when it found two)."""
    shipped = zoo.CATALOG.get("all-minilm-l6-v2")
    vocab = zoo.CATALOG.get("bert-base-uncased")
    catalog(f'''
[entries.my-vocab]
component = "tokenizer:wordpiece"
config = {{ lowercase = false }}
sources = {json.dumps([str(s) for s in vocab.sources])}
files = {json.dumps(vocab.files).replace(":", " =")}

[entries.my-minilm]
component = "{shipped.component}"
preset = "mini"
layout = "hf-bert"
tokenizer = "my-vocab"
sources = {json.dumps([str(s) for s in shipped.sources])}
files = {json.dumps(shipped.files).replace(":", " =")}
''')
    mine = zoo.load("my-minilm")
    assert mine.zoo_entry.name == "my-minilm"
    assert mine.tokenizer.zoo_entry.name == "my-vocab"
    shipped_model = zoo.load("all-minilm-l6-v2")
    assert shipped_model.tokenizer.zoo_entry.name == "bert-base-uncased"
    assert shipped_model.tokenizer.tokenize("Hello") == ["hello"]
    assert mine.tokenizer.tokenize("Hello") == ["[UNK]"]  # cased, on an uncased vocabulary
    built = zoo.create(shipped.component, preset="mini")
    with pytest.raises(zoo.ConfigError, match="names no tokenizer"):
        _ = built.tokenizer
