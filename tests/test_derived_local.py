"""A ``dir:`` folder in a foreign layout (transformers' BertModel) is converted once into a
derived file keyed by its path and versioned by its files' stat: reused while the folder is
unchanged, rebuilt when it changes, never used when tampered with or stale; concurrent
builders leave one whole file. Expected values come from transformers on the same files."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
import transformers as tf

import zoo_core as zoo

IDS = torch.tensor([[5, 17, 3, 42, 8], [9, 2, 71, 4, 1]])
MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def _peer(seed: int) -> tf.BertModel:
    torch.manual_seed(seed)
    config = tf.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=37)
    return tf.BertModel(config).eval()


def _agrees(ours: torch.nn.Module, peer: tf.BertModel) -> None:
    with torch.no_grad():
        want = peer(input_ids=IDS, attention_mask=MASK).last_hidden_state
        got = ours(input_ids=IDS, attention_mask=MASK).last_hidden_state
    keep = MASK.bool()
    torch.testing.assert_close(got[keep], want[keep], rtol=1e-5, atol=1e-5)


def _derived_files(cache: Path, folder: Path) -> list[Path]:
    weights = os.path.realpath(folder / "model.safetensors")
    key = hashlib.sha256(weights.encode()).hexdigest()
    return sorted((cache / "derived" / key).glob("*.safetensors"))


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".swap")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o444)
    os.replace(tmp, path)


@pytest.fixture
def converts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the conversions of the foreign layout (zoo_transformer.hf.convert calls)."""
    from zoo_transformer import hf

    calls: list[int] = []
    real = hf.convert

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hf, "convert", counted)
    return calls


def test_converted_once_then_read_from_the_derived_file(cache: Path, tmp_path: Path,
                                                        converts: list[int]) -> None:
    peer = _peer(0)
    peer.save_pretrained(tmp_path)
    first = zoo.load(f"dir:{tmp_path}")
    (fused,) = _derived_files(cache, tmp_path)
    written = os.stat(fused)
    second = zoo.load(f"dir:{tmp_path}")
    assert len(converts) == 1  # the second load read the derived file as it was
    assert os.stat(fused).st_ino == written.st_ino
    assert "layers.0.attn.qkv.weight" in zoo.read_safetensors(fused)
    assert second.layers[0].attn.qkv.weight is not first.layers[0].attn.qkv.weight
    _agrees(first, peer)
    _agrees(second, peer)


def test_a_changed_folder_is_converted_again(cache: Path, tmp_path: Path,
                                             converts: list[int]) -> None:
    _peer(0).save_pretrained(tmp_path)
    zoo.load(f"dir:{tmp_path}")
    other = _peer(1)
    other.save_pretrained(tmp_path)  # the same path and size, other bytes
    _agrees(zoo.load(f"dir:{tmp_path}"), other)
    assert len(converts) == 2


def test_a_tampered_derived_file_is_rebuilt_not_loaded(cache: Path, tmp_path: Path) -> None:
    peer = _peer(0)
    peer.save_pretrained(tmp_path)
    zoo.load(f"dir:{tmp_path}")
    (fused,) = _derived_files(cache, tmp_path)
    data = bytearray(fused.read_bytes())
    data[-3] ^= 0x7F  # an exponent flip in the last tensor
    _replace(fused, bytes(data))
    _agrees(zoo.load(f"dir:{tmp_path}"), peer)
    assert fused.read_bytes() != bytes(data)


def test_a_stale_derived_file_with_its_own_record_is_rebuilt(cache: Path,
                                                             tmp_path: Path) -> None:
    """The derived file of an older version, put back with its (valid) record."""
    _peer(0).save_pretrained(tmp_path)
    zoo.load(f"dir:{tmp_path}")
    (fused,) = _derived_files(cache, tmp_path)
    old = tmp_path / "old"
    old.mkdir()
    for f in (fused, fused.with_suffix(".json")):
        shutil.copy2(f, old / f.name)
    newer = _peer(1)
    newer.save_pretrained(tmp_path)
    zoo.load(f"dir:{tmp_path}")
    for f in (fused, fused.with_suffix(".json")):
        os.replace(shutil.copy2(old / f.name, f.with_name(f.name + ".back")), f)
    _agrees(zoo.load(f"dir:{tmp_path}"), newer)


def test_nonfinite_scan_is_kept_per_version(cache: Path, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    peer = _peer(0)
    with torch.no_grad():
        peer.pooler.dense.bias[0] = float("nan")
    peer.save_pretrained(tmp_path)
    for _ in range(2):
        caplog.clear()
        zoo.load(f"dir:{tmp_path}")
        assert "NaN or infinite values in 1 tensor(s): pooler.dense.bias" in caplog.text
    _peer(0).save_pretrained(tmp_path)
    caplog.clear()
    zoo.load(f"dir:{tmp_path}")
    assert "NaN" not in caplog.text


def test_concurrent_builders_build_once_and_leave_a_whole_file(cache: Path) -> None:
    source = hashlib.sha256(b"a file read in place").hexdigest()
    calls: list[int] = []

    def build() -> dict[str, torch.Tensor]:
        calls.append(1)
        time.sleep(0.2)  # long enough for every thread to find no file yet
        return {"w": torch.arange(1000.0)}

    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(
        zoo.derived(source, "toy@1", build, version="1"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(paths)) == 1 and len(paths) == 4
    assert torch.equal(zoo.read_safetensors(paths[0])["w"], torch.arange(1000.0))
    assert not [p for p in paths[0].parent.iterdir() if p.name.endswith(".tmp")]
    zoo.derived(source, "toy@1", build, version="2")  # another version: built again
    assert len(calls) == 2
