"""Fetching, verification, safetensors-only loading, offline behaviour, atomic cache writes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo_core as zoo


@pytest.fixture
def weights(toy: str, tmp_path: Path) -> tuple[Path, str, object]:
    """A toy model saved as a Hub-style folder; returns (folder, sha256, model)."""
    model = zoo.create("model:toy-mlp", preset="tiny")
    folder = tmp_path / "repo"
    model.save_pretrained(folder)
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    return folder, digest, model


def _entry(name: str, sources: list[str], digest: str) -> str:
    srcs = ", ".join(f'"{s}"' for s in sources)
    return (f'[entries.{name}]\ncomponent = "model:toy-mlp"\npreset = "tiny"\n'
            f'sources = [{srcs}]\nfiles = {{ "model.safetensors" = "{digest}" }}\n')


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".tmp", ".lnk", ".incomplete"))]


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.randn(3, 4)
    return torch.equal(a(x), b(x))


def test_load_from_dir_source_verifies_and_caches(weights, cache, catalog) -> None:
    folder, digest, model = weights
    catalog(_entry("toy", [f"dir:{folder}"], digest))
    loaded = zoo.load("toy")
    assert _same(model, loaded) and not loaded.training
    assert (cache / "blobs" / digest).is_file()
    assert zoo.info("toy")["cached"]


def test_wrong_digest_names_file_expected_actual_and_source(weights, cache, catalog) -> None:
    folder, digest, _ = weights
    wrong = "0" * 64
    catalog(_entry("toy", [f"dir:{folder}"], wrong))
    with pytest.raises(zoo.IntegrityError) as err:
        zoo.load("toy")
    msg = str(err.value)
    assert "model.safetensors" in msg and wrong in msg and digest in msg and f"dir:{folder}" in msg
    assert (folder / "model.safetensors").is_file()  # a user's folder is never deleted from
    assert not (cache / "blobs").exists() or not any((cache / "blobs").iterdir())
    assert not _leftovers(cache)


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_bad_hub_download_is_removed_and_next_source_used(weights, hub, catalog, damage) -> None:
    folder, digest, model = weights
    good = (folder / "model.safetensors").read_bytes()
    bad = good[:-100] if damage == "truncated" else good[:50] + b"X" + good[51:]
    oid = hub.commit("org/toy", {"model.safetensors": bad})
    catalog(_entry("toy", [f"hf:org/toy@{oid}", f"dir:{folder}"], digest))
    loaded = zoo.load("toy")  # the Hub copy is bad, the folder is good
    assert _same(model, loaded)
    hub_files = [p for p in (Path(hub_cache()) / "models--org--toy").rglob("*") if p.is_file()]
    assert not hub_files, f"bad download left in the Hub cache: {hub_files}"

    import shutil

    shutil.rmtree(zoo.STORE.root)  # content-addressed: a cached blob would satisfy any entry
    catalog(_entry("toy2", [f"hf:org/toy@{oid}"], digest))
    with pytest.raises(zoo.IntegrityError, match="removed"):
        zoo.load("toy2")


def hub_cache() -> str:
    import huggingface_hub.constants as hc

    return hc.HF_HUB_CACHE


def test_hub_source_by_revision_then_offline_from_cache(weights, hub, catalog, monkeypatch) -> None:
    folder, digest, model = weights
    oid = hub.commit("org/toy", {"model.safetensors": (folder / "model.safetensors").read_bytes()})
    hub.commit("org/toy", {"model.safetensors": b"newer, different bytes"})
    catalog(_entry("toy", [f"hf:org/toy@{oid}"], digest))
    assert _same(model, zoo.load("toy"))  # the pinned commit, not main
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    assert _same(model, zoo.load("toy"))


def test_offline_without_cache_explains(weights, cache, catalog, offline) -> None:
    _, digest, _ = weights
    oid = "0123456789abcdef0123456789abcdef01234567"
    catalog(_entry("toy", [f"hf:org/toy@{oid}", "pkg:not-installed-dist/weights"], digest))
    with pytest.raises(zoo.FetchError) as err:
        zoo.load("toy")
    msg = str(err.value)
    assert "'toy'" in msg and f"hf:org/toy@{oid}" in msg and "pkg:not-installed-dist" in msg
    assert "pip install not-installed-dist" in msg and "zoo fetch toy" in msg


def test_unpinned_file_is_pinned_on_first_verified_download(weights, cache, catalog) -> None:
    folder, digest, _ = weights
    catalog(_entry("toy", [f"dir:{folder}"], ""))
    zoo.load("toy")
    assert zoo.STORE.pins(zoo.CATALOG.get("toy")) == {"model.safetensors": digest}


def test_verify_finds_and_removes_a_corrupted_blob(weights, cache, catalog) -> None:
    from zoo_core.cli import main

    folder, digest, _ = weights
    catalog(_entry("toy", [f"dir:{folder}"], digest))
    assert main(["fetch", "toy"]) == 0
    assert main(["verify", "toy"]) == 0
    blob = cache / "blobs" / digest
    blob.write_bytes(blob.read_bytes()[:-10])
    assert main(["verify", "toy"]) == 1
    assert not blob.exists()


def test_pickle_files_are_refused(toy: str, tmp_path: Path, catalog, cache) -> None:
    model = zoo.create("model:toy-mlp", preset="tiny")
    path = tmp_path / "model.safetensors"
    torch.save(model.state_dict(), path)  # a zip+pickle under a safetensors name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    catalog(_entry("toy", [f"dir:{tmp_path}"], digest))
    with pytest.raises(zoo.WeightsError, match="pickle"):
        zoo.load("toy")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text('{"model_type": "toy"}')
    torch.save(model.state_dict(), hf / "pytorch_model.bin")
    with pytest.raises(zoo.ZooError):
        zoo.load(f"dir:{hf}")


@pytest.mark.parametrize("change", ["missing", "unexpected", "shape"])
def test_strict_loading_lists_keys(toy: str, tmp_path: Path, catalog, cache, change) -> None:
    model = zoo.create("model:toy-mlp", preset="tiny")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if change == "missing":
        state.pop("fc2.bias")
    elif change == "unexpected":
        state["head.weight"] = torch.zeros(2)
    else:
        state["fc1.weight"] = torch.zeros(7, 4)
    save_file(state, str(tmp_path / "model.safetensors"))
    digest = hashlib.sha256((tmp_path / "model.safetensors").read_bytes()).hexdigest()
    catalog(_entry("toy", [f"dir:{tmp_path}"], digest))
    expected = {"missing": "'fc2.bias'", "unexpected": "'head.weight'", "shape": "(7, 4)"}[change]
    with pytest.raises(zoo.WeightsError, match=change if change != "shape" else "shape") as err:
        zoo.load("toy")
    assert expected in str(err.value)


def test_truncated_safetensors_in_a_folder(weights) -> None:
    folder, _, _ = weights
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(zoo.WeightsError, match="truncated"):
        zoo.load(f"dir:{folder}")


@dataclass(frozen=True)
class TiedConfig:
    vocab: int = 11
    width: int = 4


class Tied(zoo.Model):
    """An embedding and an output projection sharing one weight, as masked-LM heads do."""

    config_class = TiedConfig

    def __init__(self, config: TiedConfig) -> None:
        super().__init__(config)
        self.embed = torch.nn.Embedding(config.vocab, config.width)
        self.out = torch.nn.Linear(config.width, config.vocab, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(ids))

    def example_inputs(self) -> dict[str, torch.Tensor]:
        return {"ids": torch.arange(5)}


class TiedPlugin:
    @zoo.hookimpl
    def zoo_components(self) -> list[zoo.Component]:
        return [zoo.component("model:tied", f"{__name__}:Tied")]


def test_tied_weights_stay_tied_after_loading(tmp_path: Path, catalog, cache) -> None:
    zoo.register_plugin(TiedPlugin(), "tied")
    try:
        model = zoo.create("model:tied")
        model.save_pretrained(tmp_path)
        from safetensors import safe_open

        with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
            assert len(list(f.keys())) == 1  # the shared weight is stored once
        digest = hashlib.sha256((tmp_path / "model.safetensors").read_bytes()).hexdigest()
        catalog(f'[entries.tied]\ncomponent = "model:tied"\nsources = ["dir:{tmp_path}"]\n'
                f'files = {{ "model.safetensors" = "{digest}" }}\n')
        loaded = zoo.load("tied")
        assert loaded.out.weight is loaded.embed.weight
        assert torch.equal(loaded.embed.weight, model.embed.weight)
        with torch.no_grad():
            loaded.embed.weight.add_(1.0)  # copy-on-write: the cached file is unchanged
        assert hashlib.sha256((cache / "blobs" / digest).read_bytes()).hexdigest() == digest
    finally:
        zoo.unregister_plugin("tied")
