"""Model skeletons: a model's structure built once per (component, config), copied per load.

Building a model runs its constructors: for MiniLM some 80 modules' ``__init__``, each a few
``nn.Module.__setattr__`` calls, a far larger cost than reading its memory-mapped weights. A
load from a file needs the structure only (every tensor comes from the checkpoint), so the
first load of a (component, config) keeps the model it built on the ``meta`` device, with
its counted size (checked against each load's limit), and every later load copies it (new
module objects, attributes copied, the meta tensors not) and puts the checkpoint's tensors
straight into the copy's parameter and buffer slots, after the same strict checks as
``load_state_dict`` (keys, shapes, dtype kinds).

Only a plain skeleton is kept: every parameter and buffer on meta and in the state dict
(no non-persistent buffer, whose values no checkpoint holds), no hooks, no module that
overrides how its state dict is saved or loaded. Anything else is built per load, as before.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn

#: attribute values shared by the copies as they are: immutable, or torch's own singletons
_ATOMS = frozenset({int, float, str, bool, bytes, complex, type(None), torch.dtype,
                    torch.device, type})
_SHARE, _NEW, _SHALLOW, _MODULES, _DEEP = (object() for _ in range(5))  # copy plans
_LIMIT = 32  # skeletons kept per process (each is a few hundred small Python objects)
_KEPT: OrderedDict[Any, Skeleton] = OrderedDict()
_LOCK = threading.Lock()


class Skeleton:
    """A meta-device model with its size figures, copied and filled per load."""

    def __init__(self, model: nn.Module, nbytes: int, aliases: dict[str, str]) -> None:
        self.model, self.nbytes, self.aliases = model, nbytes, aliases
        self.modules = list(model.modules())
        index = {id(m): i for i, m in enumerate(self.modules)}
        self.own: dict[str, Tensor] = {}  # the state dict's keys, in its order
        self.slots: list[tuple[str, int, str, bool]] = []  # key, module, name, parameter?
        self._walk(model, "", index)
        self.memo = {id(t): t for t in self.own.values()}  # shared until filled
        self.plans = [self._plan(m, index) for m in self.modules]

    def _walk(self, module: nn.Module, prefix: str, index: dict[int, int]) -> None:
        for name, p in module._parameters.items():
            if p is not None:
                self.own[prefix + name] = p
                self.slots.append((prefix + name, index[id(module)], name, True))
        for name, b in module._buffers.items():
            if b is not None:
                self.own[prefix + name] = b
                self.slots.append((prefix + name, index[id(module)], name, False))
        for name, child in module._modules.items():
            if child is not None:
                self._walk(child, f"{prefix}{name}.", index)

    def copy(self) -> tuple[nn.Module, list[nn.Module]]:
        """New module objects with the skeleton's attributes (its meta tensors shared)."""
        made = [object.__new__(type(m)) for m in self.modules]
        memo: dict[int, Any] | None = None
        for twin, plan in zip(made, self.plans, strict=True):
            attrs = {}
            for key, how, value in plan:
                if how is _SHARE:
                    attrs[key] = value
                elif how is _NEW:
                    attrs[key] = value()
                elif how is _SHALLOW:
                    attrs[key] = value.copy()
                elif how is _MODULES:
                    kind, items = value
                    attrs[key] = kind((k, None if i is None else made[i]) for k, i in items)
                else:  # anything else: a deep copy, its modules and tensors mapped
                    if memo is None:
                        memo = dict(self.memo)
                        memo.update((id(m), t) for m, t in zip(self.modules, made, strict=True))
                    attrs[key] = copy.deepcopy(value, memo)
            object.__setattr__(twin, "__dict__", attrs)
        return made[0], made

    def _plan(self, module: nn.Module, index: dict[int, int]) -> list[tuple[str, object, Any]]:
        """How each attribute of ``module`` is copied: shared (immutable), a new empty
        container, a shallow copy (of meta tensors or immutable values), its submodules
        mapped, or deep-copied."""
        plan: list[tuple[str, object, Any]] = []
        for key, value in module.__dict__.items():
            kind = type(value)
            if kind in _ATOMS or kind is tuple and all(type(v) in _ATOMS for v in value):
                plan.append((key, _SHARE, value))
            elif kind in (dict, OrderedDict, set) and not value:
                plan.append((key, _NEW, kind))
            elif kind is set and all(type(v) in _ATOMS for v in value) or \
                    kind in (dict, OrderedDict) and all(
                        type(v) in _ATOMS or id(v) in self.memo for v in value.values()):
                plan.append((key, _SHALLOW, value))
            elif kind in (dict, OrderedDict) and all(v is None or id(v) in index
                                                     for v in value.values()):
                items = [(k, None if v is None else index[id(v)]) for k, v in value.items()]
                plan.append((key, _MODULES, (kind, items)))
            else:
                plan.append((key, _DEEP, value))
        return plan

    def fill(self, modules: list[nn.Module], taken: dict[str, Tensor]) -> None:
        """Put ``taken``'s tensors (checked: every key present, shapes and dtypes the
        model's) into the copy's slots; tied keys get their main key's object."""
        placed: dict[str, Tensor] = {}
        for key, i, name, is_param in self.slots:
            main = self.aliases.get(key, key)
            value = placed.get(main)
            if value is None:
                t = taken[main]
                value = nn.Parameter(t, requires_grad=self.own[main].requires_grad) \
                    if is_param else t
                placed[main] = value
            (modules[i]._parameters if is_param else modules[i]._buffers)[name] = value


def plain(model: nn.Module) -> bool:
    """Whether ``model`` can be kept as a skeleton (see the module docstring)."""
    base = nn.Module
    for m in model.modules():
        kind = type(m)
        if (kind._save_to_state_dict is not base._save_to_state_dict
                or kind._load_from_state_dict is not base._load_from_state_dict
                or kind.get_extra_state is not base.get_extra_state
                or m._non_persistent_buffers_set or m._forward_hooks or m._forward_pre_hooks
                or m._backward_hooks or m._backward_pre_hooks or m._state_dict_hooks
                or m._state_dict_pre_hooks or m._load_state_dict_pre_hooks
                or m._load_state_dict_post_hooks):
            return False
        tensors = [*m._parameters.values(), *m._buffers.values()]
        if any(t is not None and (not t.is_meta or type(t) not in (Tensor, nn.Parameter))
               for t in tensors):
            return False
    return True


def kept(key: Any) -> Skeleton | None:
    with _LOCK:
        found = _KEPT.get(key)
        if found is not None:
            _KEPT.move_to_end(key)
        return found


def keep(key: Any, skeleton: Skeleton) -> None:
    with _LOCK:
        _KEPT[key] = skeleton
        while len(_KEPT) > _LIMIT:
            _KEPT.popitem(last=False)
