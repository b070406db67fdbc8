"""pytest plugin (entry point ``pytest11``): fixtures for zoo plugin authors, and the contract
matrix of every plugin whose folder pytest collects.

A folder whose ``pyproject.toml`` declares ``[project.entry-points.zoo]`` gets, beside its
own tests, one test per (component, check) and (model, preset) of the plugins it declares,
the way timm's ``tests/test_models.py`` covers every registered model::

    pytest plugins/zoo-face          # its tests and plugins/zoo-face/pyproject.toml::contract[...]
    pytest plugins/zoo-face -k contract

Expected failures come from the plugin's ``zoo_expected_failures`` hook; they are strict.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def zoo_cache(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Private, empty zoo (``tmp_path/"zoo"``) and Hub (``tmp_path/"hf"``) caches for one
    test, online (``HF_HUB_OFFLINE`` off)."""
    import huggingface_hub.constants as hc

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    yield tmp_path / "zoo"


@pytest.fixture
def zoo_hub(zoo_cache: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The loopback Hub server (``zoo_core.testing.hub_server``) on 127.0.0.1, with private
    caches; the real huggingface_hub client (and ``zoo.push``/``zoo.load("hf:…")``) talks to
    it. Yields the ``HubServer`` (``.url``)."""
    import huggingface_hub.constants as hc

    from .hub_server import HubServer

    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", "hf_zoo_test_token")
        monkeypatch.setattr(hc, "ENDPOINT", server.url)
        monkeypatch.setattr(hc, "HUGGINGFACE_CO_URL_TEMPLATE",
                            server.url + "/{repo_id}/resolve/{revision}/{filename}")
        yield server


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name != "pyproject.toml":
        return None
    try:
        project = tomllib.loads(file_path.read_text("utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    plugins = sorted((project.get("entry-points") or {}).get("zoo") or {})
    if not plugins:
        return None
    return ContractFile.from_parent(parent, path=file_path, plugins=plugins)


class ContractFile(pytest.File):
    """The contract matrix of the zoo plugins one distribution declares."""

    def __init__(self, *, plugins: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugins = plugins

    def collect(self) -> Iterator[pytest.Item]:
        from .._registry import REGISTRY
        from .contracts import cases

        REGISTRY.components()  # loads the installed plugins
        for plugin in self.plugins:
            report = REGISTRY.reports.get(plugin)
            if report is None or not report.components:
                why = (report.problem or report.status) if report else "not installed"
                yield ContractItem.from_parent(self, name=f"contract[{plugin}]", case=None,
                                               missing=f"plugin {plugin!r}: {why}")
                continue
            for case in cases(plugin=plugin):
                item = ContractItem.from_parent(self, name=f"contract[{case.id}]", case=case)
                if case.xfail:
                    item.add_marker(pytest.mark.xfail(reason=case.xfail, strict=True))
                yield item


class ContractItem(pytest.Item):
    """One contract case; a plugin that is not installed skips, one that is broken fails."""

    def __init__(self, *, case: Any, missing: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case, self.missing = case, missing

    def runtest(self) -> None:
        if self.case is None:
            if "not installed" in self.missing:
                pytest.skip(self.missing)
            pytest.fail(self.missing, pytrace=False)
        self.case.run()

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name
