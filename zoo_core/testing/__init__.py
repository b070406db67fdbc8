"""The contract-test kit for plugin authors.

In a plugin's tests::

    from zoo_core.testing import parametrize_components

    @parametrize_components(plugin="face", expected_failures={"to_dtype": "fp64 acos"})
    def test_contract(zoo_case):
        zoo_case.run()

The pytest plugin generates that matrix by itself for every plugin folder pytest collects
(see ``zoo_core.testing.pytest_plugin``); expected failures are declared by the plugin's
``zoo_expected_failures`` hook. On the command line: ``zoo check face``.
"""

from __future__ import annotations

from typing import Any

from .contracts import CHECKS, METHODS, Case, OptedOut, Skip, build, cases, run_checks, tensors
from .distributed import WorkerError, run_distributed

__all__ = ["CHECKS", "METHODS", "Case", "OptedOut", "Skip", "build", "cases",
           "parametrize_components", "run_checks", "run_distributed", "tensors", "WorkerError"]


def parametrize_components(
    plugin: str | None = None, kind: str | None = None, name: str | None = None,
    expected_failures: dict[str, str] | None = None,
) -> Any:
    """``pytest.mark.parametrize("zoo_case", ...)`` over every matching (component, check).

    A case with an expected failure is marked ``xfail(strict=True)`` with its reason: once it
    passes, the declaration must go. A check that does not apply skips itself; one the
    component opts out of (``contract_opt_outs``) skips as "opted out: <reason>".
    """
    import pytest

    params = [
        pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=True)]
                     if c.xfail else [])
        for c in cases(plugin, kind, name, expected_failures)
    ]
    if not params:
        raise LookupError(f"no registered component matches plugin={plugin!r}, kind={kind!r}, "
                          f"name={name!r}; is the plugin installed (see `zoo plugins`)?")
    return pytest.mark.parametrize("zoo_case", params)
