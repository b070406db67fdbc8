"""Loading builds the model on the meta device: no random init, no global monkeypatch, tied
weights and non-persistent buffers intact."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

import zoo_core as zoo

SEEN: dict[str, object] = {}


@dataclass(frozen=True)
class TinyConfig:
    vocab: int = 7
    dim: int = 4


class Tied(zoo.Model):
    """An embedding tied to its output layer, plus a sinusoid no checkpoint holds."""

    config_class = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab, config.dim)
        self.out = nn.Linear(config.dim, config.vocab, bias=False)
        self.out.weight = self.embed.weight
        # what the constructor computes on a CPU tensor of its own keeps its values
        SEEN["own_cpu_init"] = nn.init.normal_(torch.zeros(64, device="cpu")).abs().sum()
        SEEN["device"] = self.embed.weight.device

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(ids))

    def example_inputs(self) -> dict[str, torch.Tensor]:
        return {"ids": torch.arange(5)}


class Waves(Tied):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        angles = torch.arange(config.vocab, dtype=torch.float32)[:, None] / 3.0
        self.register_buffer("waves", torch.sin(angles), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids) + self.waves[ids]


class Plugin:
    @zoo.hookimpl
    def zoo_components(self) -> list[zoo.Component]:
        return [zoo.component("model:meta-tied", f"{__name__}:Tied"),
                zoo.component("model:meta-waves", f"{__name__}:Waves")]


@pytest.fixture(autouse=True)
def _plugin() -> None:
    zoo.register_plugin(Plugin(), "meta-build")
    yield
    zoo.unregister_plugin("meta-build")


def test_tied_model_is_built_on_meta_and_loaded(tmp_path: Path) -> None:
    model = zoo.create("model:meta-tied").eval()
    model.save_pretrained(tmp_path)
    loaded = zoo.load(f"dir:{tmp_path}")
    assert SEEN["device"] == torch.device("meta")  # built without allocating or initialising
    assert float(SEEN["own_cpu_init"]) > 0  # nn.init itself was not patched away
    assert loaded.out.weight is loaded.embed.weight
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    ids = torch.arange(7)
    torch.testing.assert_close(loaded(ids), model(ids), rtol=0, atol=0)


def test_non_persistent_buffers_get_their_values(tmp_path: Path) -> None:
    model = zoo.create("model:meta-waves").eval()
    model.save_pretrained(tmp_path)
    loaded = zoo.load(f"dir:{tmp_path}")
    expected = torch.tensor([math.sin(i / 3.0) for i in range(7)])[:, None]
    torch.testing.assert_close(loaded.waves, expected)
    torch.testing.assert_close(loaded(torch.arange(7)), model(torch.arange(7)), rtol=0, atol=0)


def test_building_on_meta_leaves_other_threads_initialising(tmp_path: Path) -> None:
    """The old skip_init replaced nn.init functions process-wide while a model was built."""
    zoo.create("model:meta-tied").save_pretrained(tmp_path)
    stop, zeros = threading.Event(), []

    def initialise() -> None:
        while not stop.is_set():
            zeros.append(int((nn.init.normal_(torch.zeros(256)) == 0).sum()))

    worker = threading.Thread(target=initialise)
    worker.start()
    try:
        for _ in range(20):
            zoo.load(f"dir:{tmp_path}")
    finally:
        stop.set()
        worker.join()
    assert zeros and max(zeros) < 256  # never left as zeros by a no-op init


def test_later_loads_are_independent_copies(tmp_path: Path) -> None:
    """Later loads copy the first load's meta skeleton: each model has its own modules,
    tensors, attributes and hooks, and its ties."""
    model = zoo.create("model:meta-tied").eval()
    model.save_pretrained(tmp_path)
    first = zoo.load(f"dir:{tmp_path}")
    first.embed.register_forward_hook(lambda *_: None)
    first.out.note = "changed"
    with torch.no_grad():
        first.embed.weight.add_(1.0)
    second = zoo.load(f"dir:{tmp_path}")
    assert second.out.weight is second.embed.weight
    assert second.embed is not first.embed and second.embed.weight is not first.embed.weight
    assert not second.embed._forward_hooks and not hasattr(second.out, "note")
    assert second.embed._parameters is not first.embed._parameters
    assert not any(t.is_meta for t in [*second.parameters(), *second.buffers()])
    ids = torch.arange(7)
    torch.testing.assert_close(second(ids), model(ids), rtol=0, atol=0)
    assert [n for n, _ in second.named_modules()] == [n for n, _ in model.named_modules()]


def test_a_kept_skeleton_is_still_held_to_the_size_limit(tmp_path: Path) -> None:
    zoo.create("model:meta-tied").save_pretrained(tmp_path)
    zoo.load(f"dir:{tmp_path}")
    with pytest.raises(zoo.ConfigError, match="max_bytes"):
        zoo.load(f"dir:{tmp_path}", max_bytes=64)  # 7x4 float32 weights take 112 bytes


def test_the_default_dtype_is_the_models(tmp_path: Path) -> None:
    zoo.create("model:meta-tied").save_pretrained(tmp_path)
    assert zoo.load(f"dir:{tmp_path}").embed.weight.dtype == torch.float32
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = zoo.load(f"dir:{tmp_path}")
    finally:
        torch.set_default_dtype(before)
    assert model.embed.weight.dtype == torch.float64  # as nn.Embedding built under it
    assert model.out.weight is model.embed.weight


class Locked(Tied):
    """A module holding something no copy can take (a lock): built per load, as before."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.guard = threading.Lock()


def test_a_model_that_cannot_be_copied_is_built_per_load(tmp_path: Path) -> None:
    zoo.register_plugin(_Single("model:meta-locked", "Locked"), "meta-locked")
    try:
        model = zoo.create("model:meta-locked").eval()
        model.save_pretrained(tmp_path)
        first, second = zoo.load(f"dir:{tmp_path}"), zoo.load(f"dir:{tmp_path}")
    finally:
        zoo.unregister_plugin("meta-locked")
    assert first.guard is not second.guard and second.out.weight is second.embed.weight
    torch.testing.assert_close(second(torch.arange(7)), model(torch.arange(7)), rtol=0, atol=0)


class _Single:
    def __init__(self, ref: str, name: str) -> None:
        self.ref, self.name = ref, name

    @zoo.hookimpl
    def zoo_components(self) -> list[zoo.Component]:
        return [zoo.component(self.ref, f"{__name__}:{self.name}")]
