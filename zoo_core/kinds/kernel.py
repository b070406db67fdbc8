"""``kernel``: one op, a pure-PyTorch reference, and backends that may be faster.

``dispatch`` (calling the kernel) takes the first backend, in the kernel's preference order,
whose ``supports`` accepts the call; ``backend="name"`` forces one and a backend that does
not support the call raises ``UnsupportedError`` with its reason.

Example:
    >>> class Scale(Kernel):
    ...     name = "scale"
    ...     def __init__(self):
    ...         self.backends = {"torch": Backend("torch", lambda x, s: x * s)}
    ...     def reference(self, x, s):
    ...         return x * s
    ...     def example_calls(self):
    ...         return [((torch.randn(3), 2.0), {})]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .._errors import UnsupportedError, unknown
from ._contract import not_declared


def _always(*args: Any, **kwargs: Any) -> bool:
    return True


@dataclass
class Backend:
    """One implementation of a kernel.

    ``supports(*args, **kwargs)`` returns ``True`` when the call is supported, else ``False``
    or a string that says why not.
    """

    name: str
    fn: Callable[..., Any]
    supports: Callable[..., bool | str] = _always

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def why_not(what: str, backends: dict[str, Backend], backend: str, *args: Any,
            **kwargs: Any) -> str | None:
    """``None`` if ``backend`` (of ``what``, e.g. ``"kernel 'attention'"``) supports the call,
    else the reason it does not."""
    if backend not in backends:
        raise unknown(f"backend of {what}", backend, backends)
    verdict = backends[backend].supports(*args, **kwargs)
    if verdict is True:
        return None
    return verdict or f"backend {backend!r} does not support this call"


def select(what: str, backends: dict[str, Backend], *args: Any, backend: str | None = None,
           **kwargs: Any) -> str:
    """The backend that runs this call: the first of ``backends`` (fastest first) that supports
    it, or the forced ``backend``; an unsupported forced one raises with its reason. Kernels
    choose per call, tokenizers once at load (their ``supports`` is a self-check)."""
    if backend is not None:
        reason = why_not(what, backends, backend, *args, **kwargs)
        if reason:
            able = [n for n in backends
                    if n != backend and why_not(what, backends, n, *args, **kwargs) is None]
            fix = (f"backends that support it: {', '.join(map(repr, able))}; pass one, or leave "
                   "backend=None to pick the fastest") if able else "no backend supports it"
            raise UnsupportedError(f"{what}, backend {backend!r}: {reason}; {fix}")
        return backend
    reasons = []
    for name in backends:
        reason = why_not(what, backends, name, *args, **kwargs)
        if reason is None:
            return name
        reasons.append(f"{name}: {reason}")
    raise UnsupportedError(f"no backend of {what} supports this call: " + "; ".join(reasons))


class Kernel:
    """Base class of zoo kernels; ``backends`` is ordered fastest first. ``contract_opt_outs``
    maps a contract check this kernel opts out of to the reason."""

    name: str = "kernel"
    contract_opt_outs: ClassVar[Mapping[str, str]] = {}
    backends: dict[str, Backend]

    def reference(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def why_not(self, backend: str, *args: Any, **kwargs: Any) -> str | None:
        """``None`` if ``backend`` supports the call, else the reason it does not."""
        return why_not(f"kernel {self.name!r}", self.backends, backend, *args, **kwargs)

    def select(self, *args: Any, backend: str | None = None, **kwargs: Any) -> str:
        """The backend that would run this call."""
        return select(f"kernel {self.name!r}", self.backends, *args, backend=backend, **kwargs)

    def __call__(self, *args: Any, backend: str | None = None, **kwargs: Any) -> Any:
        return self.backends[self.select(*args, backend=backend, **kwargs)](*args, **kwargs)

    def example_calls(self) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        """``(args, kwargs)`` calls for the contract checks."""
        raise not_declared(self, "example_calls", "backends")

    def bad_inputs(self) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        """``(args, kwargs)`` calls that must raise a ``ZooError``."""
        raise not_declared(self, "bad_inputs", "bad_inputs")

    def tolerance(self, *args: Any, **kwargs: Any) -> tuple[float, float]:
        """``(rtol, atol)`` for comparing a backend with the reference on this call."""
        return (1e-4, 1e-5)
