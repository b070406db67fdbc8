"""Contract checks for every kind: what any registered component must satisfy.

The matrix is component × preset × check. The kit builds a small instance of a component
with, in order of preference, the factory's ``example()`` classmethod, its ``"tiny"`` preset,
or its defaults, then runs the checks of its kind. Every other preset of a model is built on
the meta device (no memory, no init) for the ``preset`` check: config round trip, parameter
count against ``parameter_counts[preset]`` (which the model declares from the paper or a peer)
and output shapes.

The checks call the methods each kind's base class declares (``METHODS``): a small valid call
(``example_inputs``, ``example_batches``, ``example_calls``, ``example_texts``,
``example_cases``) and ``bad_inputs()``, calls that must raise a ``ZooError``, shaped like the
example call (model: forward kwargs; loss and metric: ``(input, target)``; kernel:
``(args, kwargs)``; tokenizer: the text to encode; transform: ``apply`` options). A component
that does not implement one fails; it may instead opt out of a check on its class,
``contract_opt_outs = {"bad_inputs": "the reason"}`` (``"parameter_count"`` for the count of
the preset check alone), and ``zoo check`` prints the case as ``opted out`` with the reason.

A check raises ``AssertionError`` (or a ``ZooError``) on failure and ``Skip`` when it does
not apply. Expected failures come from the plugin's ``zoo_expected_failures`` hook and are
strict: a case that passes while declared failing fails, so a fix must remove its entry.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._registry import REGISTRY, Component
from ._compare import same as _same
from ._compare import tensors


class Skip(Exception):
    """Raised by a check that does not apply to this component."""


class OptedOut(Skip):
    """The component's class opts out of this check (``contract_opt_outs``), with a reason."""


#: the methods the checks of each kind call, declared by the kind's base class
METHODS: dict[str, tuple[str, ...]] = {
    "model": ("example_inputs", "bad_inputs"), "loss": ("example_inputs", "bad_inputs"),
    "metric": ("example_batches", "bad_inputs"), "kernel": ("example_calls", "bad_inputs"),
    "tokenizer": ("example_texts", "bad_inputs"), "transform": ("example_cases", "bad_inputs"),
}


def _declared(obj: Any, method: str) -> list[Any]:
    """``obj.<method>()``, failing (not skipping) when the component does not provide it."""
    if not callable(getattr(obj, method, None)):
        raise AssertionError(f"{type(obj).__name__} has no {method}() method: derive it from "
                             f"the kind's base class and implement it, or opt out")
    found = list(getattr(obj, method)())
    assert found, f"{method}() returned nothing"
    return found


def build(comp: Component, preset: str | None = None) -> Any:
    """A small instance of ``comp`` for the checks, or ``preset`` built on the meta device."""
    from .._api import create

    if preset is not None:
        from .._weights import _MetaBuild

        with _MetaBuild():
            return create(comp.ref, preset=preset)
    factory = comp.load()
    if hasattr(factory, "example"):
        return factory.example()
    presets = getattr(factory, "presets", {}) or {}
    return create(comp.ref, preset="tiny" if "tiny" in presets else None)


def _forward(model: Any, inputs: dict[str, Any]) -> Any:
    return model(**inputs)


def _scalar(out: Any) -> Any:
    floats = [t for t in tensors(out) if t.is_floating_point() and t.requires_grad]
    assert floats, "forward returned no differentiable tensor"
    return sum(t.float().mean() for t in floats)


# -- model --------------------------------------------------------------------------------
def model_config_roundtrip(model: Any) -> None:
    from .._config import config_from_dict, config_to_dict

    text = json.dumps(config_to_dict(model.config))
    again = config_from_dict(type(model.config), json.loads(text))
    assert again == model.config, f"config changed through JSON: {model.config} -> {again}"


def model_forward(model: Any) -> None:
    model.eval()
    out = _forward(model, model.example_inputs())
    found = tensors(out)
    assert found, "forward returned no tensor"
    for t in found:
        if t.is_floating_point():
            assert bool(t.isfinite().all()), "forward produced NaN or inf"


def model_save_load(model: Any) -> None:
    import torch

    from .._loading import load

    model.eval()
    inputs = model.example_inputs()
    with torch.no_grad():
        before = _forward(model, inputs)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        again = load(f"dir:{tmp}")
    assert type(again) is type(model), f"loaded a {type(again).__name__}"
    with torch.no_grad():
        after = _forward(again, inputs)
    # the same bits in other memory: oneDNN may pick another kernel for other alignments
    # (differences ~1e-9 seen on convolutions under load), so not bitwise
    _same(before, after, rtol=1e-5, atol=1e-7, what="outputs after save/load")


def model_gradients(model: Any) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    _scalar(_forward(model, model.example_inputs())).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:10]}"


def model_eval_deterministic(model: Any) -> None:
    import torch

    model.eval()
    inputs = model.example_inputs()
    with torch.no_grad():
        _same(_forward(model, inputs), _forward(model, inputs), what="two eval forwards")


def model_to_dtype(model: Any) -> None:
    import torch

    model = model.to(torch.float64).eval()
    inputs = {k: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
              for k, v in model.example_inputs().items()}
    with torch.no_grad():
        out = _forward(model, inputs)
    floats = [t for t in tensors(out) if t.is_floating_point()]
    assert floats, "forward returned no floating-point tensor: nothing shows .to(float64) worked"
    assert all(t.dtype == torch.float64 for t in floats), "outputs did not follow .to(float64)"


def model_checkpointing(model: Any) -> None:
    import copy

    import torch

    if not getattr(model, "supports_grad_checkpointing", False):
        raise Skip("model does not declare supports_grad_checkpointing")
    if "transform:checkpoint" not in REGISTRY.components():
        raise Skip("no plugin provides transform:checkpoint")
    twin = copy.deepcopy(model).train()
    twin.set_grad_checkpointing("every")
    model.train()
    torch.manual_seed(0)
    inputs = model.example_inputs()
    grads = []
    for m in (model, twin):
        m.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # same dropout masks in both runs
        _scalar(_forward(m, inputs)).backward()
        grads.append({n: p.grad for n, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys(), "checkpointing changed which parameters get grads"
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-5, atol=1e-6,
                                   msg=f"gradient of {n} differs under checkpointing")


# -- loss ---------------------------------------------------------------------------------
def loss_finite(loss: Any) -> None:
    out = loss(*loss.example_inputs())
    assert out.dim() == 0, f"loss must be a scalar, got shape {tuple(out.shape)}"
    assert bool(out.isfinite()), f"loss is not finite: {out}"


def loss_differentiable(loss: Any) -> None:
    inp, target = loss.example_inputs()
    loss.zero_grad(set_to_none=True)
    loss(inp, target).backward()
    grads = [p.grad for p in loss.parameters() if p.requires_grad]
    if getattr(inp, "requires_grad", False):
        grads.append(inp.grad)
    assert grads, "neither the input nor any parameter requires grad"
    assert all(g is not None and bool(g.isfinite().all()) for g in grads), "missing/NaN gradient"


# -- metric -------------------------------------------------------------------------------
def _fresh(metric: Any) -> Any:
    import copy

    m = copy.deepcopy(metric)
    m.reset()
    return m


def _cat(batches: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    import torch

    return (torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))


def _same_result(a: dict[str, Any], b: dict[str, Any], what: str) -> None:
    import torch

    assert a.keys() == b.keys(), f"{what}: keys {sorted(a)} vs {sorted(b)}"
    for k in a:
        x, y = torch.as_tensor(a[k]), torch.as_tensor(b[k])
        torch.testing.assert_close(x, y, equal_nan=True, rtol=1e-6, atol=1e-9,
                                   msg=f"{what}: {k!r} differs")


def metric_streaming(metric: Any) -> None:
    batches = metric.example_batches()
    streamed, once = _fresh(metric), _fresh(metric)
    for p, t in batches:
        streamed.update(p, t)
    once.update(*_cat(batches))
    _same_result(streamed.compute(), once.compute(), "streaming vs one-shot")


def metric_merge(metric: Any) -> None:
    batches = metric.example_batches()
    assert len(batches) >= 2, "example_batches() must give at least two batches"
    half = len(batches) // 2
    left, right, whole = _fresh(metric), _fresh(metric), _fresh(metric)
    for p, t in batches[:half]:
        left.update(p, t)
    for p, t in batches[half:]:
        right.update(p, t)
    whole.update(*_cat(batches))
    _same_result(left.merge(right).compute(), whole.compute(), "merge vs concatenated")


def metric_reset(metric: Any) -> None:
    batches = metric.example_batches()
    used, fresh = _fresh(metric), _fresh(metric)
    for p, t in batches:
        used.update(p, t)
    used.reset()
    used.update(*batches[0])
    fresh.update(*batches[0])
    _same_result(used.compute(), fresh.compute(), "after reset")


# -- kernel -------------------------------------------------------------------------------
def kernel_backends(kernel: Any) -> None:
    from .._errors import UnsupportedError

    ran = 0
    for args, kwargs in kernel.example_calls():
        expected = kernel.reference(*args, **kwargs)
        rtol, atol = kernel.tolerance(*args, **kwargs)
        for name in kernel.backends:
            if kernel.why_not(name, *args, **kwargs) is None:
                got = kernel(*args, backend=name, **kwargs)
                _same(got, expected, rtol, atol, what=f"backend {name!r} vs reference")
                ran += 1
            else:
                try:
                    kernel(*args, backend=name, **kwargs)
                except UnsupportedError as e:
                    assert name in str(e), f"refusal does not name the backend: {e}"
                else:
                    raise AssertionError(f"backend {name!r} says it does not support a call "
                                         "but ran it when forced")
    assert ran, "no backend supported any example call"


def kernel_dispatch(kernel: Any) -> None:
    for args, kwargs in kernel.example_calls():
        chosen = kernel.select(*args, **kwargs)
        assert kernel.why_not(chosen, *args, **kwargs) is None


# -- tokenizer ----------------------------------------------------------------------------
def tokenizer_roundtrip(tok: Any) -> None:
    for text in tok.example_texts():
        ids = tok.encode(text)
        assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids), \
            f"ids out of [0, vocab_size) for {text!r}"
        back = tok.decode(ids)
        if getattr(tok, "lossless", True):
            assert back == text, f"decode(encode({text!r})) == {back!r}"
        else:
            assert tok.encode(back) == ids, f"encode is not stable on {text!r} -> {back!r}"


def tokenizer_save_load(tok: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = tok.save(tmp)
        assert files, "save() must return the names of the files it wrote"
        again = type(tok).load(tmp)
    for text in tok.example_texts():
        assert again.encode(text) == tok.encode(text), f"save/load changed encode({text!r})"
    assert again.vocab_size == tok.vocab_size
    assert again.special_tokens == tok.special_tokens


def tokenizer_special_tokens(tok: Any) -> None:
    specials = tok.special_tokens
    ids = list(specials.values())
    assert len(set(ids)) == len(ids), f"special tokens share ids: {specials}"
    assert all(0 <= i < tok.vocab_size for i in ids), f"special ids out of range: {specials}"


def tokenizer_batch(tok: Any) -> None:
    texts = tok.example_texts()
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts], "encode_batch != encode"


# -- transform ----------------------------------------------------------------------------
def transform_preserves(transform: Any) -> None:
    import copy

    import torch

    for model, inputs in _declared(transform, "example_cases"):
        twin = transform.apply(copy.deepcopy(model))
        torch.manual_seed(0)
        a = model(**inputs)
        torch.manual_seed(0)
        b = twin(**inputs)
        _same(a, b, 1e-6, 1e-7, what="outputs after transform")


# -- every kind: compiling and refusing bad input -----------------------------------------
def _compiles(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Trace ``fn`` whole with dynamo (the eager backend needs no compiler): a graph break,
    such as a forward that asks the device for a value, fails."""
    import torch
    import torch._dynamo

    torch._dynamo.reset()
    try:
        torch.compile(fn, backend="eager", fullgraph=True)(*args, **kwargs)
    except (torch._dynamo.exc.Unsupported, torch._dynamo.exc.UserError) as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [repr(e)]
        cause = next((line for line in lines if line.startswith("Caused by:")), lines[0])
        raise AssertionError(f"graph break under torch.compile(fullgraph=True): {cause}") from e
    finally:
        torch._dynamo.reset()


def model_compiles(model: Any) -> None:
    import torch

    model.eval()
    with torch.no_grad():
        _compiles(model, **model.example_inputs())


def loss_compiles(loss: Any) -> None:
    _compiles(loss, *loss.example_inputs())


def _refuses(call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             what: str) -> None:
    from .._errors import ZooError

    try:
        call(*args, **kwargs)
    except ZooError:
        return
    except Exception as e:
        raise AssertionError(f"{what} raised {type(e).__name__} ({e}), not a ZooError "
                             "(zoo.InputError or zoo.ConfigError)") from e
    raise AssertionError(f"{what} was accepted")


def _bad_inputs(obj: Any) -> list[Any]:
    return _declared(obj, "bad_inputs")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def model_bad_inputs(model: Any) -> None:
    model.eval()
    for kwargs in _bad_inputs(model):
        _refuses(model, (), kwargs, f"forward(**{_short(kwargs)})")


def pair_bad_inputs(obj: Any) -> None:
    """Losses (``forward``) and metrics (``update``): ``(input, target)`` pairs."""
    call = obj.update if hasattr(obj, "update") else obj
    for pair in _bad_inputs(obj):
        _refuses(call, tuple(pair), {}, f"{type(obj).__name__}{_short(tuple(pair))}")


def kernel_bad_inputs(kernel: Any) -> None:
    for args, kwargs in _bad_inputs(kernel):
        _refuses(kernel, tuple(args), dict(kwargs), f"kernel call {_short((args, kwargs))}")


def tokenizer_bad_inputs(tok: Any) -> None:
    for text in _bad_inputs(tok):
        _refuses(tok.encode, (text,), {}, f"encode({_short(text)})")


def transform_bad_inputs(transform: Any) -> None:
    import copy

    model = _declared(transform, "example_cases")[0][0]
    for options in _bad_inputs(transform):
        _refuses(transform.apply, (copy.deepcopy(model),), options,
                 f"apply(model, **{_short(options)})")


# -- model presets, on the meta device ----------------------------------------------------
def model_preset(model: Any, preset: str) -> None:
    """A preset built on meta: its config round-trips, its parameter count is the declared
    one (``parameter_counts``; a model without one must opt out of ``"parameter_count"``),
    and a forward on meta inputs gives outputs whose leading dimension is the batch's.

    A forward that asks the device for a value cannot run on meta: that part skips, and the
    ``compiles`` check names the sync."""
    import torch

    model_config_roundtrip(model)
    count = sum(p.numel() for p in model.parameters())
    declared = (getattr(model, "parameter_counts", None) or {}).get(preset)
    opted_out = (getattr(model, "contract_opt_outs", None) or {}).get("parameter_count")
    if declared is not None:
        assert count == declared, f"preset {preset!r}: {count:,} parameters, declared {declared:,}"
    elif not opted_out:
        raise AssertionError(
            f"preset {preset!r} ({count:,} parameters) has no declared parameter count: set "
            f"{type(model).__name__}.parameter_counts[{preset!r}] from the paper or a peer, or "
            "opt out with contract_opt_outs = {'parameter_count': 'the reason'}")
    counted = "parameter count checked" if declared is not None else \
        f"parameter count not declared ({opted_out})"
    inputs = model.example_inputs()
    batch = {v.shape[0] for v in inputs.values() if isinstance(v, torch.Tensor) and v.dim()}
    meta = {k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    try:
        with torch.no_grad():
            out = _forward(model.eval(), meta)
    except (RuntimeError, NotImplementedError) as e:
        if "meta" not in str(e):
            raise
        raise Skip(f"config checked, {counted}; forward on meta failed ({e}): a "
                   "forward that asks the device for a value (see the compiles check)") from e
    found = tensors(out)
    assert found, "forward on meta returned no tensor"
    if len(batch) == 1:
        lead = {t.shape[0] for t in found if t.dim()}
        assert lead <= batch, f"outputs' leading dims {sorted(lead)} are not the batch {batch}"


CHECKS: dict[str, dict[str, Callable[[Any], None]]] = {
    "model": {"config_roundtrip": model_config_roundtrip, "forward": model_forward,
              "save_load": model_save_load, "gradients": model_gradients,
              "eval_deterministic": model_eval_deterministic, "to_dtype": model_to_dtype,
              "checkpointing": model_checkpointing, "compiles": model_compiles,
              "bad_inputs": model_bad_inputs},
    "loss": {"finite": loss_finite, "differentiable": loss_differentiable,
             "compiles": loss_compiles, "bad_inputs": pair_bad_inputs},
    "metric": {"streaming": metric_streaming, "merge": metric_merge, "reset": metric_reset,
               "bad_inputs": pair_bad_inputs},
    "kernel": {"backends": kernel_backends, "dispatch": kernel_dispatch,
               "bad_inputs": kernel_bad_inputs},
    "tokenizer": {"roundtrip": tokenizer_roundtrip, "save_load": tokenizer_save_load,
                  "special_tokens": tokenizer_special_tokens, "batch": tokenizer_batch,
                  "bad_inputs": tokenizer_bad_inputs},
    "transform": {"preserves": transform_preserves, "bad_inputs": transform_bad_inputs},
}


@dataclass(frozen=True)
class Case:
    """One contract check of one component (and, for the ``preset`` check, one preset)."""

    ref: str
    check: str
    xfail: str = ""
    preset: str | None = None
    opt_out: str = ""  # the component's reason for opting out of this check

    @property
    def id(self) -> str:
        return f"{self.ref}[{self.preset}]::{self.check}" if self.preset else \
            f"{self.ref}::{self.check}"

    def verify(self) -> None:
        """Run the check; raises ``Skip`` when it does not apply."""
        import torch

        if self.opt_out:
            raise OptedOut(self.opt_out)
        comp = REGISTRY.get(self.ref)
        torch.manual_seed(0)
        if self.preset is not None:
            model_preset(build(comp, self.preset), self.preset)
        else:
            CHECKS[comp.kind][self.check](build(comp))

    def run(self) -> None:
        """Run the check under pytest: ``Skip`` becomes a pytest skip."""
        import pytest

        try:
            self.verify()
        except OptedOut as e:
            pytest.skip(f"opted out: {e}")
        except Skip as e:
            pytest.skip(str(e))


def _presets(comp: Component) -> list[str]:
    """The presets of a model other than the one its small instance is built from."""
    if comp.kind != "model":
        return []
    factory = comp.load()
    presets = list(getattr(factory, "presets", {}) or {})
    small = None if hasattr(factory, "example") else "tiny" if "tiny" in presets else None
    return [p for p in presets if p != small]


def _opt_outs(comp: Component) -> dict[str, str]:
    """The checks the component's class opts out of; a reason must be given."""
    try:
        outs = dict(getattr(comp.load(), "contract_opt_outs", None) or {})
    except Exception:  # noqa: BLE001 - an import failure is reported by the checks themselves
        return {}
    return {check: str(why) or "no reason given" for check, why in outs.items()}


def cases(
    plugin: str | None = None, kind: str | None = None, name: str | None = None,
    expected_failures: dict[str, str] | None = None,
) -> Iterator[Case]:
    """Every (component, check) pair, and (model, preset) pair, filtered by plugin, kind or
    component name.

    Expected failures are the plugin's (``zoo_expected_failures`` hook) updated with
    ``expected_failures``; each maps a case id (``"kind:name::check"``,
    ``"kind:name[preset]::preset"``), ``"kind:name::check"`` or a check name to the reason.
    """
    for ref, comp in sorted(REGISTRY.components().items()):
        if (plugin and comp.plugin != plugin) or (kind and comp.kind != kind) \
                or (name and ref != name and comp.name != name):
            continue
        xf = {**REGISTRY.expected_failures(comp.plugin), **(expected_failures or {})}
        outs = _opt_outs(comp)
        for check in CHECKS[comp.kind]:
            yield Case(ref, check, xf.get(f"{ref}::{check}", xf.get(check, "")),
                       opt_out=outs.get(check, ""))
        for preset in _presets(comp):
            case = Case(ref, "preset", preset=preset)
            yield Case(ref, "preset", xf.get(case.id, xf.get(f"{ref}::preset", "")), preset,
                       outs.get("preset", ""))


def run_checks(**filters: Any) -> list[tuple[Case, str, str]]:
    """Run the checks; return ``(case, status, detail)``, status one of passed, failed,
    skipped, ``opted out`` (the detail is the component's reason), xfailed, xpassed."""
    results = []
    for case in cases(**filters):
        try:
            case.verify()
        except OptedOut as e:
            results.append((case, "opted out", str(e)))
        except Skip as e:
            results.append((case, "skipped", str(e)))
        except Exception as e:  # a failing check is a result, not a crash
            status = "xfailed" if case.xfail else "failed"
            results.append((case, status, f"{type(e).__name__}: {e}"))
        else:
            results.append((case, "xpassed" if case.xfail else "passed", ""))
    return results
