"""Catalogue schema: errors name the file, the entry and the field."""

from __future__ import annotations

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
