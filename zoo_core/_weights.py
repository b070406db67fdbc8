"""Safetensors weights: strict loading with key mappings, and saving tied weights once."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils._device import DeviceContext  # what torch.device(...) enters

from ._errors import ConfigError, WeightsError, ZooError
from ._files import atomic_path, atomic_write
from ._safetensors import mapped
from ._storage import CONFIG_NAME, WEIGHTS_NAME


def read_safetensors(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
                     ) -> dict[str, Tensor]:
    """Tensors of one safetensors file or several shards; pickles are refused.

    The tensors are memory-mapped and copy-on-write: reading is cheap, writing to them never
    touches the file.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    state: dict[str, Tensor] = {}
    for path in paths:
        part = mapped(path)
        if part is None:  # left to the safetensors library
            try:
                part = load_file(str(path))
            except Exception as e:
                raise WeightsError(f"{Path(path).name!r} cannot be read as safetensors ({e}); "
                                   "it may be truncated: remove it and fetch it again") from e
        clash = state.keys() & part.keys()
        if clash:
            raise WeightsError(f"tensor(s) {sorted(clash)[:5]} appear in two shards")
        state.update(part)
    return state


_RANDOM_FILLS = frozenset({"normal_", "uniform_", "bernoulli_", "exponential_", "cauchy_",
                           "geometric_", "log_normal_", "random_", "fill_", "zero_"})


class _MetaBuild(DeviceContext):
    """``torch.device("meta")`` for building a model whose weights are about to be loaded:
    factories allocate on meta, and initialisers of meta tensors (``nn.init``, in-place random
    fills) return at once instead of running meta kernels that hold no values anyway. A torch
    function mode, so it is local to the thread that builds (no global monkeypatch)."""

    def __init__(self) -> None:
        super().__init__("meta")

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")
        if isinstance(target, Tensor) and target.is_meta:
            if func in _INITIALISERS or getattr(func, "__name__", "") in _RANDOM_FILLS:
                return target
            if func is torch.empty_like and kwargs.get("device") in (None, "meta", _META):
                return torch.empty(target.shape, dtype=kwargs.get("dtype") or target.dtype,
                                   device=_META)
        return super().__torch_function__(func, types, args, kwargs)


_META = torch.device("meta")
_INITIALISERS = frozenset(getattr(nn.init, n) for n in dir(nn.init)
                          if n.endswith("_") and not n.startswith("_"))


class _TooBig(Exception):
    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


def build_sized(factory: Callable[[Any], nn.Module], config: Any, limit: int, where: str,
                *, meta: bool = True, activations: int | None = None) -> nn.Module:
    """``factory(config)``, its parameter and buffer bytes counted as each is registered: past
    ``limit`` the build stops with a ``ConfigError`` (before the rest is allocated). ``meta``:
    build on the meta device (no memory, no initialisation), falling back to a real build for a
    constructor that cannot run there; ``meta=False`` checks on meta first, then builds.
    ``activations``: also run the model's ``example_inputs()`` through it on meta and refuse
    it if one tensor it computes would take more bytes than that."""
    return _sized(factory, config, limit, where, meta, activations)[0]


def _sized(factory: Callable[[Any], nn.Module], config: Any, limit: int, where: str,
           meta: bool, activations: int | None) -> tuple[nn.Module, int]:
    """``build_sized``'s model and the bytes counted while it was built on meta."""
    from torch.nn.modules import module as nn_module

    counted = [0]

    def count(_module: nn.Module, _name: str, t: Tensor | None) -> None:
        if t is not None:
            counted[0] += t.numel() * t.element_size()
            if counted[0] > limit:
                raise _TooBig(counted[0])

    hooks = [nn_module.register_module_parameter_registration_hook(count),
             nn_module.register_module_buffer_registration_hook(count)]
    try:
        model = None
        try:
            with _MetaBuild():
                model = factory(config)
        except (_TooBig, ZooError):
            raise
        except Exception:  # a constructor that computes on values: build it the usual way
            counted[0] = 0
        if model is not None and activations is not None:
            _check_activations(factory, config, model, activations)
        if model is None or not meta:
            counted[0] = 0
            model = factory(config)
        return model, counted[0]
    except _TooBig as e:
        raise _too_big(factory, where, e.nbytes, limit, activations) from None
    except ZooError:
        raise
    except Exception as e:  # a zero or negative size, an inconsistent config ...
        text = str(e).strip().splitlines()
        raise ConfigError(f"{where}: field 'config' cannot build {_name(factory)} "
                          f"({type(e).__name__}: {text[0] if text else ''}); fix the config "
                          "values") from None
    finally:
        for h in hooks:
            h.remove()


def _name(factory: Any) -> str:
    return getattr(factory, "__name__", type(factory).__name__)


def _too_big(factory: Any, where: str, nbytes: int, limit: int,
             activations: int | None) -> ConfigError:
    return ConfigError(
        f"{where}: field 'config' asks for a {_name(factory)} holding more than "
        f"{nbytes / 2**30:.2f} GiB (in its weights, or in one activation of its example "
        f"inputs), over the limit of {max(limit, activations or 0) / 2**30:.2f} GiB (the "
        "memory available, or what its weight files can fill); check its sizes, or pass "
        "max_bytes= if you mean it")


def _check_activations(factory: Any, config: Any, model: nn.Module, activations: int) -> None:
    """Raise ``_TooBig`` if one tensor of the model's example run takes more than
    ``activations`` bytes (measured once per config and plugin version, and kept in the
    store: running a model on meta imports torch._dynamo and sympy, seconds per process)."""
    key = _config_key(factory, config)
    largest = _ACTIVATIONS.get(key) if key else None
    record = _activation_record(factory, key) if key and largest is None else None
    if record is not None:
        with contextlib.suppress(OSError, ValueError, RecursionError):
            doc = json.loads(record.read_text("utf-8"))
            if isinstance(doc, dict) and doc.get("key") == key \
                    and type(doc.get("largest")) is int:
                largest = doc["largest"]
    if largest is None:
        largest = largest_activation(model)
        if record is not None:
            atomic_write(record, json.dumps({"key": key, "largest": largest}) + "\n")
    if key:
        _ACTIVATIONS[key] = largest
    if largest > activations:
        raise _TooBig(largest)


def _activation_record(factory: Any, key: str) -> Path | None:
    """Where the store keeps a config's largest activation: named by the config, the
    plugin's version and torch's; None for a factory no plugin registered."""
    import hashlib

    from ._registry import REGISTRY
    from ._storage import STORE

    target = f"{factory.__module__}:{getattr(factory, '__qualname__', '')}"
    comp = next((c for c in REGISTRY.components().values() if c.target == target), None)
    report = REGISTRY.reports.get(comp.plugin) if comp is not None else None
    if report is None:
        return None
    name = hashlib.sha256(f"{key}\n{comp.plugin} {report.version}\ntorch {torch.__version__}"
                          .encode()).hexdigest()
    return STORE._folder("derived", "activations") / f"{name}.json"


#: The largest activation measured per (component, config): the same config gives the same
#: figure, so a process measures it once.
_ACTIVATIONS: dict[str, int] = {}


def _config_key(factory: Any, config: Any) -> str:
    """``module.qualname`` and the config as JSON, or "" when the config is not JSON."""
    import json

    from ._config import config_to_dict

    try:
        settings = json.dumps(config_to_dict(config), sort_keys=True)
    except (TypeError, ValueError, ZooError):
        return ""
    return f"{factory.__module__}.{getattr(factory, '__qualname__', '')}:{settings}"


def largest_activation(model: nn.Module) -> int:
    """Bytes of the largest tensor a meta-device model computes on its ``example_inputs()``
    (0 when it has none or cannot run on meta)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten, tree_map

    example = getattr(model, "example_inputs", None)
    if example is None:
        return 0
    largest = [0]

    class Track(TorchDispatchMode):
        @classmethod
        def _should_skip_dynamo(cls) -> bool:  # never compiled: no torch._dynamo import
            return False

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, Tensor):
                    largest[0] = max(largest[0], t.numel() * t.element_size())
            return out

    try:
        # made on the CPU (small by contract), then moved: factories such as zeros_like on
        # meta run torch's Python references, which import sympy (seconds, once a process)
        inputs = tree_map(lambda t: t.to(_META) if isinstance(t, Tensor) else t, example())
        with _MetaBuild():
            with torch.no_grad(), Track():
                model(**inputs) if isinstance(inputs, dict) else model(*inputs)
    except Exception:  # data-dependent code cannot run on meta: what ran so far is counted
        pass
    return largest[0]


def build_loaded(factory: Callable[[Any], nn.Module], config: Any, state: dict[str, Tensor],
                 layout: str | None = None, *, limit: int | None = None,
                 where: str = "config", allow_cast: bool = False,
                 activations: int | None = None) -> nn.Module:
    """``factory(config)`` holding the checkpoint ``state``, strictly, with no random init.

    The model is built on the meta device (no memory, no initialisation; its size checked
    against ``limit`` bytes as it is built), then takes the checkpoint's tensors as its own
    (``assign=True``). A model with non-persistent buffers (values no checkpoint holds), or
    whose constructor cannot run on meta, is built for real. The meta model of a (component,
    config) is kept and copied for later loads (``_skeleton``): no constructor runs again.
    """
    limit = limit if limit is not None else 1 << 62
    skeleton, model = _skeleton(factory, config, limit, where, activations)
    if skeleton is not None:
        model, modules = skeleton.copy()
        if layout is not None:
            state = _converted(model, state, layout)
        state, expected, _ = _fit(type(model).__name__, skeleton.own, skeleton.aliases,
                                  dict(state), strict=True, allow_cast=allow_cast)
        own = skeleton.own
        skeleton.fill(modules, {k: _in_dtype(state[k], own[k].dtype) for k in expected})
        return model
    if model is None:
        model = build_sized(factory, config, limit, where, activations=activations)
    if any(t.is_meta for t in model.buffers()) and \
            any(m._non_persistent_buffers_set for m in model.modules()):
        model = factory(config)
    load_state_dict(model, state, layout, assign=True, allow_cast=allow_cast)
    return model


def _in_dtype(t: Tensor, dtype: torch.dtype) -> Tensor:
    return t if t.dtype == dtype else t.to(dtype)


def _skeleton(factory: Callable[[Any], nn.Module], config: Any, limit: int, where: str,
              activations: int | None) -> tuple[Any, nn.Module | None]:
    """The kept skeleton of ``factory(config)`` (built and kept on first use; its size
    checked against ``limit`` and ``activations`` on every use), or ``(None, model)`` with
    the model just built when it cannot be kept (``(None, None)``: a config that is no
    JSON)."""
    from . import _skeleton as sk

    settings = _config_key(factory, config)
    if not settings:
        return None, None
    key = (factory, settings, torch.get_default_dtype())
    found = sk.kept(key)
    if found is None:
        model, nbytes = _sized(factory, config, limit, where, True, activations)
        if not sk.plain(model):
            return None, model
        own = model.state_dict(keep_vars=True)
        found = sk.Skeleton(model, nbytes, _aliases(own))
        if list(found.own) != list(own):  # a state dict of its own making
            return None, model
        try:
            found.copy()  # an attribute that cannot be copied (a lock ...): built per load
        except Exception:
            return None, model
        sk.keep(key, found)
        return found, None
    try:
        if found.nbytes > limit:
            raise _TooBig(found.nbytes)
        if activations is not None:
            _check_activations(factory, config, found.copy()[0], activations)
    except _TooBig as e:
        raise _too_big(factory, where, e.nbytes, limit, activations) from None
    return found, None


def nonfinite_in(state: dict[str, Tensor]) -> list[str]:
    """Keys of floating-point tensors holding a NaN or an infinity, sorted."""
    return sorted(k for k, t in state.items() if t.is_floating_point() and not _finite(t))


def _finite(t: Tensor) -> bool:
    """Whether every value of ``t`` is finite: a NaN or an infinity makes the sum NaN or
    infinite, so one reduction (in float32 at least) decides, and only a sum that overflowed
    is looked at again."""
    wide = t.dtype in (torch.float32, torch.float64)
    total = t.sum() if wide else t.sum(dtype=torch.float32)
    return bool(torch.isfinite(total)) or bool(torch.isfinite(t).all())


def nonfinite(path: str | os.PathLike[str]) -> list[str]:
    """Keys of the tensors of a safetensors file holding a NaN or an infinity."""
    return nonfinite_in(read_safetensors(path))


def _cast_problems(state: dict[str, Tensor], own: dict[str, Tensor], keys: list[str]
                   ) -> list[str]:
    """Keys whose dtype would change kind on load (integer/bool to float, or back)."""
    def kind(t: Tensor) -> str:
        return "bool" if t.dtype == torch.bool else "float" if t.is_floating_point() else \
            "complex" if t.is_complex() else "int"

    return [f"{k}: checkpoint {state[k].dtype} vs model {own[k].dtype}" for k in keys
            if state[k].dtype != own[k].dtype and kind(state[k]) != kind(own[k])]


def _aliases(state: dict[str, Tensor]) -> dict[str, str]:
    """Keys of tied tensors in a model's state dict mapped to the first key with their storage."""
    first: dict[tuple[int, int, tuple[int, ...]], str] = {}
    aliases = {}
    for key, t in state.items():
        ident = (id(t), 0, ()) if t.is_meta else \
            (t.untyped_storage().data_ptr(), int(t.storage_offset()), tuple(t.shape))
        if ident in first:
            aliases[key] = first[ident]
        else:
            first[ident] = key
    return aliases


def load_state_dict(model: nn.Module, state: dict[str, Tensor], layout: str | None = None,
                    *, strict: bool = True, assign: bool = False,
                    allow_cast: bool = False) -> list[str]:
    """Load ``state`` into ``model``; return the model keys left as they were.

    Strict (the default): missing, unexpected or misshapen keys raise ``WeightsError`` listing
    them. ``strict=False`` skips missing and unexpected keys (misshapen ones still raise) and
    returns the missing ones, like ``nn.Module.load_state_dict``'s ``missing_keys``.

    ``layout`` names a foreign key layout declared by the model (``Model.layouts``). Tied
    weights need only one of their keys. ``assign=True`` takes the checkpoint's tensors as the
    parameters instead of copying into them (no copy of memory-mapped weights); use it only on
    a freshly built model that no optimizer holds yet. A tensor whose dtype would change kind
    (an int8 or bool tensor into a float parameter, or back) is a ``WeightsError`` unless
    ``allow_cast=True``; floats of another width are converted.
    """
    if layout is not None:
        state = _converted(model, state, layout)
    own = model.state_dict(keep_vars=True)  # tied parameters are one object, even on meta
    aliases = _aliases(own)
    state, expected, left = _fit(type(model).__name__, own, aliases, dict(state),
                                 strict=strict, allow_cast=allow_cast)
    if not assign:
        with torch.no_grad():
            for k in expected:
                own[k].copy_(state[k])
        return left
    # Take the (memory-mapped, copy-on-write) checkpoint tensors as they are, in the model's
    # dtype and device, instead of copying them into freshly initialised ones.
    taken = {k: state[k].to(dtype=own[k].dtype,
                            device=state[k].device if own[k].is_meta else own[k].device)
             for k in expected}
    model.load_state_dict(taken, strict=False, assign=True)
    for alias, main in aliases.items():  # assignment unties shared weights: tie them again
        _set_tensor(model, alias, _get_tensor(model, main))
    return left


def _converted(model: nn.Module, state: dict[str, Tensor], layout: str) -> dict[str, Tensor]:
    convert = getattr(model, "convert_state_dict", None)
    if convert is None:
        raise WeightsError(f"{type(model).__name__} declares no layouts; cannot map {layout!r}")
    return convert(state, layout)  # type: ignore[no-any-return]


def _fit(model_name: str, own: dict[str, Tensor], aliases: dict[str, str],
         state: dict[str, Tensor], *, strict: bool, allow_cast: bool
         ) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """``state`` (a dict of the caller's, changed here) with tied keys folded into their main
    key, the keys to load and the model keys it lacks; missing, unexpected, misshapen keys
    and dtype kind changes raise ``WeightsError`` (missing and unexpected ones only when
    ``strict``)."""
    for alias, main in aliases.items():
        if alias in state and main not in state:
            state[main] = state[alias]
        state.pop(alias, None)
    expected = [k for k in own if k not in aliases]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in expected if k in state and state[k].shape != own[k].shape]
    left = missing
    casts = [] if allow_cast else _cast_problems(state, own, [k for k in expected if k in state
                                                              and not shapes])
    if not strict:
        expected = [k for k in expected if k in state]
        missing, unexpected = [], []
    if casts:
        raise WeightsError(f"weights of {model_name} would change dtype on load "
                           f"({len(casts)}): {_head(casts)}; pass allow_cast=True to convert "
                           "them, if that is what you want")
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_head(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_head(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {_head(shapes)}")
        hint = (" Is this a checkpoint of another architecture or size? Foreign layouts need "
                "their declared mapping (entry field 'layout').")
        raise WeightsError(f"weights do not fit {model_name}: " + "; ".join(parts)
                           + "." + hint)
    return state, expected, left


def _get_tensor(model: nn.Module, key: str) -> Tensor:
    owner, _, name = key.rpartition(".")
    return getattr(model.get_submodule(owner), name)  # type: ignore[no-any-return]


def _set_tensor(model: nn.Module, key: str, value: Tensor) -> None:
    owner, _, name = key.rpartition(".")
    setattr(model.get_submodule(owner), name, value)


def _head(items: Sequence[str], n: int = 8) -> str:
    shown = ", ".join(repr(i) for i in items[:n])
    return shown + (f", … (+{len(items) - n} more)" if len(items) > n else "")


def state_dict_for_save(model: nn.Module) -> dict[str, Tensor]:
    """The model's state dict with tied aliases dropped and tensors made contiguous."""
    state = model.state_dict()
    aliases = _aliases(state)
    return {k: v.detach().contiguous() for k, v in state.items() if k not in aliases}


def save_safetensors(tensors: dict[str, Tensor] | nn.Module, path: str | os.PathLike[str],
                     metadata: dict[str, str] | None = None) -> Path:
    """Write tensors (or a module's state dict, tied weights once) to a safetensors file,
    atomically and with the umask's mode; return the path.

    Keys are written sorted and the metadata holds no time stamp, so the same tensors give the
    same bytes on every machine.
    """
    if isinstance(tensors, nn.Module):
        tensors = state_dict_for_save(tensors)
    else:
        tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(dict(sorted(tensors.items())), str(tmp),
                  metadata={"format": "pt", **(metadata or {})})
    return Path(path)


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    save_safetensors(model, path, metadata)


def zoo_metadata(obj: Any, files: list[str]) -> dict[str, Any]:
    """The ``zoo`` section of ``config.json``: component, plugin and version, files."""
    from ._registry import REGISTRY

    cls = type(obj)
    target = f"{cls.__module__}:{cls.__qualname__}"
    comp = next((c for c in REGISTRY.components().values() if c.target == target), None)
    if comp is None:
        raise WeightsError(f"{cls.__name__} ({target}) is not a registered component; register "
                           "it in a plugin's zoo_components hook before saving it")
    report = REGISTRY.reports.get(comp.plugin)
    return {"component": comp.ref, "plugin": comp.plugin,
            "version": report.version if report else "", "files": files}


def save_model_dir(model: nn.Module, directory: Path) -> Path:
    """``config.json`` (zoo metadata + config) and ``model.safetensors`` in ``directory``."""
    from ._config import config_to_dict

    directory.mkdir(parents=True, exist_ok=True)
    meta = zoo_metadata(model, [WEIGHTS_NAME])
    save_weights(model, directory / WEIGHTS_NAME, {"zoo_component": meta["component"]})
    doc = {"zoo": meta, "config": config_to_dict(model.config)}  # type: ignore[attr-defined]
    atomic_write(directory / CONFIG_NAME, json.dumps(doc, indent=2) + "\n")
    return directory
