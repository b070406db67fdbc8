"""The contract methods every kind declares, and how a component opts out of one.

The contract checks (``zoo check``, ``zoo_core.testing``) call methods that each kind's base
class declares: ``example_inputs``/``example_batches``/``example_calls``/``example_texts``/
``example_cases`` (a small valid call) and ``bad_inputs`` (calls that must raise a
``ZooError``). A component that does not implement one fails the check that calls it, unless
its class opts out, naming the check and the reason, which ``zoo check`` prints::

    class Identity(zoo.Transform):
        contract_opt_outs = {"bad_inputs": "apply() takes no option, so nothing is bad"}
"""

from __future__ import annotations

from typing import Any


class NotDeclared(NotImplementedError):
    """A contract method the component's class does not implement."""


def not_declared(obj: Any, method: str, check: str) -> NotDeclared:
    """The error a kind's base method raises when a component does not implement it."""
    return NotDeclared(
        f"{type(obj).__name__} does not implement {method}(), which the {check!r} contract "
        f"check calls: implement it, or opt out with "
        f"contract_opt_outs = {{{check!r}: 'the reason'}} on the class (zoo check prints it)")
