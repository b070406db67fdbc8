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
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private zoo and Hub caches."""
    import huggingface_hub.constants as hc

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    return tmp_path / "zoo"


@pytest.fixture
def hub(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """A Hub-compatible server on 127.0.0.1 that the real huggingface_hub client talks to."""
    import huggingface_hub.constants as hc

    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", "hf_zoo_test_token")
        monkeypatch.setattr(hc, "ENDPOINT", server.url)
        monkeypatch.setattr(hc, "HUGGINGFACE_CO_URL_TEMPLATE",
                            server.url + "/{repo_id}/resolve/{revision}/{filename}")
        yield server


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
