"""Legacy torch state dicts enter only through the store's safe conversion (``convert``)."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo_core as zoo
from zoo_core._convert import convert_torch


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entry(folder: Path, converted: str = "", source: str = "", name: str = "toy-pt") -> str:
    return (f'[entries.{name}]\ncomponent = "model:toy-mlp"\npreset = "tiny"\n'
            f'sources = ["dir:{folder}"]\nfiles = {{ "model.safetensors" = "{converted}" }}\n'
            f'convert = {{ "model.safetensors" = {{ from = "weights.pt", format = "torch", '
            f'sha256 = "{source}" }} }}\n')


@pytest.fixture
def legacy(toy: str, tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    """A toy model's state dict saved with torch.save as ``weights.pt``."""
    model = zoo.create("model:toy-mlp", preset="tiny")
    folder = tmp_path / "legacy"
    folder.mkdir()
    torch.save(model.state_dict(), folder / "weights.pt")
    return folder, model


class Exploit:
    """Unpickling this runs ``os.system`` — unless the unpickler refuses it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_converted_entry_loads_and_pins_both_digests(legacy, cache, catalog) -> None:
    folder, model = legacy
    catalog(_entry(folder))
    loaded = zoo.load("toy-pt")
    x = torch.randn(3, 4)
    assert torch.equal(loaded(x), model(x))  # the peer: the module whose state dict was saved
    entry = zoo.CATALOG.get("toy-pt")
    converted = zoo.STORE.pins(entry)["model.safetensors"]
    assert zoo.STORE.source_pins(entry) == {"model.safetensors": _sha(folder / "weights.pt")}
    blob = cache / "blobs" / converted
    assert _sha(blob) == converted and blob.stat().st_mode & 0o777 == 0o444
    from safetensors.torch import load_file

    assert load_file(str(blob)).keys() == model.state_dict().keys()
    assert not list((cache / "tmp").iterdir())


@pytest.mark.parametrize("legacy_format", [False, True])
def test_malicious_pickle_is_refused_without_side_effect(tmp_path, cache, catalog, toy,
                                                         legacy_format) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "evil"
    folder.mkdir()
    state = {"fc1.weight": torch.zeros(2, 2), "payload": Exploit(marker)}
    if legacy_format:
        with open(folder / "weights.pt", "wb") as f:
            pickle.dump(state, f, protocol=2)
    else:
        torch.save(state, folder / "weights.pt")
    assert not marker.exists()
    with pytest.raises(zoo.WeightsError, match="weights_only") as err:
        convert_torch(folder / "weights.pt", tmp_path / "out.safetensors")
    assert "'weights.pt'" in str(err.value)
    catalog(_entry(folder))
    with pytest.raises(zoo.WeightsError, match="toy-pt"):
        zoo.load("toy-pt")
    assert not marker.exists(), "unpickling ran the payload"
    assert not (tmp_path / "out.safetensors").exists()
    assert not (cache / "blobs").exists() or not list((cache / "blobs").iterdir())
    assert not list((cache / "tmp").iterdir())


def test_two_processes_convert_to_identical_bytes(legacy, tmp_path) -> None:
    folder, _ = legacy
    convert_torch(folder / "weights.pt", tmp_path / "out0.safetensors")  # this process
    code = ("import sys; from zoo_core._convert import convert_torch; "
            "convert_torch(sys.argv[1], sys.argv[2])")
    run = subprocess.run([sys.executable, "-c", code, str(folder / "weights.pt"),
                          str(tmp_path / "out1.safetensors")], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONHASHSEED": "1"})
    assert run.returncode == 0, run.stderr
    outs = [(tmp_path / f"out{i}.safetensors").read_bytes() for i in range(2)]
    assert outs[0] == outs[1]
    # the bytes are safetensors' own canonical form: sorted keys, no time metadata
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tmp_path / "out0.safetensors"))
    save_file(dict(sorted(tensors.items())), str(tmp_path / "ref.safetensors"),
              metadata={"format": "pt"})
    assert (tmp_path / "ref.safetensors").read_bytes() == outs[0]


def test_pinned_converted_digest_catches_a_changed_source(legacy, cache, catalog) -> None:
    folder, model = legacy
    out = folder.parent / "converted.safetensors"
    convert_torch(folder / "weights.pt", out)
    converted = _sha(out)
    changed = {k: v + 1 for k, v in model.state_dict().items()}
    torch.save(changed, folder / "weights.new")
    os.replace(folder / "weights.new", folder / "weights.pt")
    catalog(_entry(folder, converted=converted))
    with pytest.raises(zoo.IntegrityError) as err:
        zoo.load("toy-pt")
    msg = str(err.value)
    assert converted in msg and _sha(folder / "weights.pt") in msg and "'weights.pt'" in msg
    assert not (cache / "blobs").exists() or not list((cache / "blobs").iterdir())


def test_pinned_source_digest_catches_a_changed_source(legacy, cache, catalog) -> None:
    folder, model = legacy
    pinned = _sha(folder / "weights.pt")
    torch.save({k: v * 2 for k, v in model.state_dict().items()}, folder / "weights.new")
    os.replace(folder / "weights.new", folder / "weights.pt")
    catalog(_entry(folder, source=pinned))
    with pytest.raises(zoo.IntegrityError, match=pinned):
        zoo.load("toy-pt")


def test_converted_blob_follows_the_integrity_rules(legacy, cache, catalog) -> None:
    folder, model = legacy
    catalog(_entry(folder))
    zoo.load("toy-pt")
    digest = zoo.STORE.pins(zoo.CATALOG.get("toy-pt"))["model.safetensors"]
    blob = cache / "blobs" / digest
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    (cache / "bad").write_bytes(bytes(data))
    os.replace(cache / "bad", blob)  # a changed blob: the store converts the source again
    x = torch.randn(2, 4)
    assert torch.equal(zoo.load("toy-pt")(x), model(x))
    assert _sha(blob) == digest


def test_nested_state_dicts_are_flattened_with_dotted_keys(tmp_path) -> None:
    t = torch.arange(6.0).reshape(2, 3)
    torch.save({"pnet": {"conv1.weight": t, "conv1": {"bias": t[0]}}}, tmp_path / "n.pt")
    convert_torch(tmp_path / "n.pt", tmp_path / "n.safetensors")
    got = zoo.read_safetensors(tmp_path / "n.safetensors")
    assert sorted(got) == ["pnet.conv1.bias", "pnet.conv1.weight"]
    assert torch.equal(got["pnet.conv1.bias"], t[0]) and got["pnet.conv1.weight"].is_contiguous()


@pytest.mark.parametrize("content, key", [
    ({"epoch": 3, "w": torch.zeros(1)}, "'epoch'"),
    ({"w": [torch.zeros(1)]}, "'w'"),
    ([torch.zeros(1)], "top level"),
    ({"a.b": torch.zeros(1), "a": {"b": torch.ones(1)}}, "'a.b'"),
    ({}, "no tensor"),
])
def test_anything_but_a_state_dict_is_refused(tmp_path, content, key) -> None:
    torch.save(content, tmp_path / "x.pt")
    with pytest.raises(zoo.WeightsError, match=key):
        convert_torch(tmp_path / "x.pt", tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("spec, field", [
    ('{ from = "w.pt", format = "Pickle!" }', "'format'"),  # unknown names fail at load
    ('{ from = "../w.pt" }', "'from'"),
    ('{ from = "w.pt", sha256 = "abc" }', "'sha256'"),
    ('{ from = "w.pt", colour = 1 }', "'colour'"),
    ('"w.pt"', "table"),
])
def test_convert_field_is_validated(catalog, spec, field) -> None:
    path = catalog('[entries.x]\ncomponent = "model:toy-mlp"\nsources = ["dir:/a"]\n'
                   'files = { "model.safetensors" = "" }\n'
                   f'convert = {{ "model.safetensors" = {spec} }}\n')
    with pytest.raises(zoo.CatalogError) as err:
        zoo.list()
    msg = str(err.value)
    assert str(path) in msg and "'x'" in msg and "'convert'" in msg and field in msg
