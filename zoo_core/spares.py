"""Large CPU buffers kept between training steps: ``zoo.spares``.

A fresh CPU tensor of a few tens of megabytes is memory the kernel maps anew, page by page:
about 50 000 page faults for 200 MB, 40 ms on two cores, paid again each step after the last
step's tensor was freed. CUDA's caching allocator keeps such memory; on the CPU a component
asks for its step-sized buffers here instead::

    buf = zoo.spares.of(self).empty("logits", (batch, classes), like=weight)
    torch.mm(x, weight.t(), out=buf)

``of(owner)`` is the pool of one owner (a module, a weight tensor), dropped with it. ``empty``
hands back last step's memory for that role when nothing but the pool still holds it: not a
gradient the caller kept, not a graph that saved it, not a view of it (the storage's use
count, the same check autograd makes before it accumulates into a gradient in place);
otherwise fresh memory, which the pool then keeps. What it hands out is a plain tensor over
that memory, never a view of the pool's. Off the CPU, or in a torch without the use count,
it is ``like.new_empty(shape)``. Between steps the memory stays taken, as in CUDA's
allocator: one buffer per role.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from functools import cache
from typing import Any

_pools: dict[int, Spares] = {}      # by id(owner), removed when the owner is collected
_lock = threading.Lock()


def of(owner: Any) -> Spares:
    """The pool of ``owner``, any object that takes a weak reference (keyed by identity, so a
    tensor owner is never compared by value)."""
    with _lock:
        pool = _pools.get(id(owner))
        if pool is None:
            pool = _pools[id(owner)] = Spares()
            weakref.finalize(owner, _pools.pop, id(owner), None)
        return pool


class Spares:
    """One reusable buffer per role; see the module docstring."""

    def __init__(self) -> None:
        self.held: dict[str, Any] = {}

    def empty(self, role: str, shape: tuple[int, ...], like: Any) -> Any:
        """An uninitialised tensor of ``shape`` with ``like``'s dtype and device."""
        if like.device.type != "cpu" or _use_count() is None:
            return like.new_empty(shape)
        shape = tuple(shape)
        with _lock:
            buf = self.held.get(role)
            if (buf is None or tuple(buf.shape) != shape or buf.dtype != like.dtype
                    or not _only_ours(buf)):
                buf = self.held[role] = like.new_empty(shape)
            return like.new_empty(0).set_(buf)


@cache
def _use_count() -> tuple[Callable[[int], int], int] | None:
    """torch's storage use count, with its reading for a tensor nothing else holds (the
    reading includes the storage object asked for it); ``None`` where torch lacks the call."""
    import torch

    count = getattr(torch._C, "_storage_Use_Count", None)
    if count is None:
        return None
    probe = torch.empty(0)
    return count, count(probe.untyped_storage()._cdata)


def _only_ours(buf: Any) -> bool:
    """Whether nothing but ``buf`` holds its storage."""
    count, alone = _use_count()  # type: ignore[misc]
    return bool(count(buf.untyped_storage()._cdata) == alone)
