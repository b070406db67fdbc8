"""Core fixtures: the third-party toy plugin registered explicitly, a private cache, a Hub."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import zoo_core as zoo
from zoo_core.testing.hub_server import HubServer

TOY_SRC = Path(__file__).parent / "thirdparty" / "zoo-toy" / "src"


@pytest.fixture
def toy() -> Iterator[str]:
    """The zoo-toy plugin, registered without installing it; unregistered afterwards."""
    sys.path.insert(0, str(TOY_SRC))
    import zoo_toy.plugin

    name = zoo.register_plugin(zoo_toy.plugin, "toy")
    yield name
    zoo.unregister_plugin(name)
    sys.path.remove(str(TOY_SRC))


@pytest.fixture
def cache(zoo_cache: Path) -> Path:
    """Private zoo and Hub caches (the kit's ``zoo_cache``)."""
    return zoo_cache


@pytest.fixture
def hub(zoo_hub: HubServer) -> HubServer:
    """The kit's loopback Hub, which the real huggingface_hub client talks to."""
    return zoo_hub


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a user catalogue (ZOO_CATALOG) from a TOML body; returns the writer."""

    def write(body: str) -> Path:
        path = tmp_path / "catalog.toml"
        path.write_text("schema = 1\n" + body)
        monkeypatch.setenv("ZOO_CATALOG", str(path))
        zoo.CATALOG.invalidate()
        return path

    yield write
    zoo.CATALOG.invalidate()
