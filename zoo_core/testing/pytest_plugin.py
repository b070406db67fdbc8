"""pytest plugin (entry point ``pytest11``): fixtures for zoo plugin authors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def zoo_cache(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A private, empty zoo and Hub cache for one test."""
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    yield tmp_path / "zoo-cache"
