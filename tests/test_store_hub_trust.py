"""Issue 22, the Hub half of the store: one resolve path for ``hf:`` loads and tokenizers,
pins only from bytes the Hub vouched for, a trickling server cut off, the Hub cache tidied
without following links. The real huggingface_hub client talks to the loopback Hub."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import torch

import zoo_core as zoo
from zoo_core.cli import main
from zoo_core.testing import hub_server
from zoo_core.testing.hub_server import HubServer


def _hub_blobs(cache: Path, repo: str) -> Path:
    return cache.parent / "hf" / "hub" / ("models--" + repo.replace("/", "--")) / "blobs"


def _swap(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".swap")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.fixture
def pushed(toy: str, hub: HubServer) -> tuple[str, torch.nn.Module, object]:
    """A toy model pushed with bert-base-uncased's WordPiece tokenizer; ``hf:`` reference."""
    model = zoo.create("model:toy-mlp", preset="tiny")
    tok = zoo.load("bert-base-uncased")
    rev = zoo.push(model, "me/toy", tokenizer=tok)
    files = json.loads(hub.repos["me/toy"].commits[rev]["config.json"])["zoo"]
    assert "vocab.txt" in files["tokenizer"]["files"]
    return f"hf:me/toy@{rev}", model, tok


# -- item 4: one Hub path ------------------------------------------------------------------
def test_load_tokenizer_hf_reads_pinned_store_files_not_the_hub_cache(pushed, cache) -> None:
    ref, _, tok = pushed
    text = "hello world, the zoo"
    want = tok.encode(text)
    assert zoo.load_tokenizer(ref).encode(text) == want
    # a tokenizer file swapped in the Hub cache is never read again: the store holds its copy
    for blob in _hub_blobs(cache, "me/toy").iterdir():
        if blob.read_bytes().startswith(b"[PAD]"):
            _swap(blob, b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    assert zoo.load_tokenizer(ref).encode(text) == want
    pins = json.loads((zoo.STORE.snapshot(ref).parent / "pins.json").read_text())
    assert set(pins["files"]) >= {"config.json", "vocab.txt", "model.safetensors"}


def test_load_tokenizer_hf_refuses_changed_store_bytes_it_cannot_restore(pushed, cache) -> None:
    ref, _, _ = pushed
    zoo.load_tokenizer(ref)
    view = zoo.STORE.snapshot(ref)
    blob = Path(os.path.realpath(view / "vocab.txt"))
    for b in _hub_blobs(cache, "me/toy").iterdir():  # the Hub cache cannot restore it either
        _swap(b, b"junk")
    os.chmod(blob, 0o644)
    _swap(blob, b"[PAD]\nhello\n")
    with pytest.raises(zoo.IntegrityError, match="vocab.txt"):
        zoo.load_tokenizer(ref)


def test_verify_covers_hf_loads_and_accepts_hf_references(pushed, cache, capsys) -> None:
    ref, model, _ = pushed
    zoo.load(ref)
    capsys.readouterr()
    assert main(["verify", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["entry"], r["file"]) for r in rows} >= {(ref, "model.safetensors"),
                                                        (ref, "config.json")}
    assert main(["verify", ref]) == 0
    blob = Path(os.path.realpath(zoo.STORE.snapshot(ref) / "model.safetensors"))
    os.chmod(blob, 0o644)
    _swap(blob, blob.read_bytes()[:-4] + b"\0\0\0\0")
    assert main(["verify", ref]) == 1
    assert main(["verify", "hf:me/never-loaded@" + "a" * 40]) == 1  # one error line, exit 1


# -- item 9: pins only from bytes the Hub vouched for ----------------------------------------
def _git_sha1(data: bytes) -> str:
    """The ETag the Hub sends for a regular (non-LFS) file: its git blob hash."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.mark.parametrize("etag", ["W/not-hex-at-all", "0" * 40])
def test_a_first_download_the_hub_does_not_vouch_for_is_never_pinned(
        toy, hub, cache, monkeypatch, etag) -> None:
    model = zoo.create("model:toy-mlp", preset="tiny")
    rev = zoo.push(model, "me/toy")
    tree = hub.repos["me/toy"].commits[rev]
    good = tree["model.safetensors"]
    # the server is broken: config.json's bytes under model.safetensors' name, a bad ETag
    tree["model.safetensors"] = tree["config.json"]
    monkeypatch.setattr(hub_server, "_etag", lambda data: etag)
    with pytest.raises(zoo.IntegrityError, match="ETag"):
        zoo.load(f"hf:me/toy@{rev}")
    pins = zoo.STORE.snapshot(f"hf:me/toy@{rev}").parent / "pins.json"
    assert not pins.exists() or json.loads(pins.read_text())["files"] == {}
    # the server is fixed (ETags as the Hub sends them: git blob hashes of regular files):
    # the load works, nothing was poisoned
    tree["model.safetensors"] = good
    monkeypatch.setattr(hub_server, "_etag", _git_sha1)
    x = torch.randn(3, 4)
    assert torch.equal(zoo.load(f"hf:me/toy@{rev}")(x), model(x))


def test_a_trickling_server_is_cut_off(toy, hub, cache, monkeypatch) -> None:
    model = zoo.create("model:toy-mlp", preset="tiny")
    rev = zoo.push(model, "me/toy")
    monkeypatch.setenv("ZOO_HUB_GRACE_S", "0.5")
    monkeypatch.setenv("ZOO_HUB_MIN_RATE", "1000")

    class Trickle:
        def __init__(self, out) -> None:
            self.out = out

        def write(self, data: bytes) -> None:
            for i in range(len(data)):
                self.out.write(data[i:i + 1])
                self.out.flush()
                time.sleep(0.05)

        def flush(self) -> None:
            self.out.flush()

        @property
        def closed(self) -> bool:
            return self.out.closed

    resolve = hub_server._Handler._resolve

    def slow(self, repo_id: str, revision: str, filename: str) -> None:
        if self.command == "GET" and filename == "model.safetensors":
            end = self.end_headers

            def trickle_after_headers() -> None:
                end()
                self.wfile = Trickle(self.wfile)

            self.end_headers = trickle_after_headers
        try:
            resolve(self, repo_id, revision, filename)
        except OSError:  # the client hung up
            pass

    monkeypatch.setattr(hub_server._Handler, "_resolve", slow)
    with pytest.raises(zoo.FetchError, match="ZOO_HUB_MIN_RATE"):
        zoo.load(f"hf:me/toy@{rev}")


# -- item 7: the Hub cache is tidied without following links ---------------------------------
def test_clean_incomplete_does_not_follow_a_linked_hub_blobs_folder(toy, hub, cache,
                                                                     tmp_path) -> None:
    model = zoo.create("model:toy-mlp", preset="tiny")
    rev = zoo.push(model, "me/toy")
    zoo.load(f"hf:me/toy@{rev}")
    blobs = _hub_blobs(cache, "me/toy")
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "abc.incomplete"
    victim.write_bytes(b"someone else's partial file")
    os.utime(victim, (time.time() - 3600, time.time() - 3600))
    for p in blobs.iterdir():
        p.rename(outside / p.name)
    blobs.rmdir()
    blobs.symlink_to(outside)
    zoo.STORE.clean()
    for p in (cache / "blobs").iterdir():  # force downloads again
        os.chmod(p, 0o644)
        p.unlink()
    with pytest.raises(zoo.ZooError):
        zoo.load(f"hf:other/none@{rev}")
    zoo.load(f"hf:me/toy@{rev}")
    assert victim.read_bytes() == b"someone else's partial file"


# -- item 4: push goes through the one resolve path ------------------------------------------------
def test_push_of_a_foreign_folder_uploads_what_its_entry_names(hub, cache, tmp_path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path / "hf"
    BertModel(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=37)).save_pretrained(folder)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello"]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    saved = {p.name for p in folder.iterdir()}  # what transformers wrote
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= saved
    zoo.save_safetensors({"junk": torch.zeros(3)}, folder / "stray.safetensors")
    assert main(["push", f"dir:{folder}", "me/bert"]) == 0
    tree = set(hub.repos["me/bert"].commits[hub.repos["me/bert"].refs["main"]])
    assert saved <= tree and "stray.safetensors" not in tree
