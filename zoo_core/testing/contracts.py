"""Contract checks for every kind: what any registered component must satisfy.

The kit builds a small instance of a component with, in order of preference, the factory's
``example()`` classmethod, its ``"tiny"`` preset, or its defaults, then runs the checks of its
kind. A check raises ``AssertionError`` (or a ``ZooError``) on failure and ``Skip`` when it
does not apply.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._registry import REGISTRY, Component


class Skip(Exception):
    """Raised by a check that does not apply to this component."""


def build(comp: Component) -> Any:
    """A small instance of ``comp`` for the checks."""
    from .._api import create

    factory = comp.load()
    if hasattr(factory, "example"):
        return factory.example()
    presets = getattr(factory, "presets", {}) or {}
    return create(comp.ref, preset="tiny" if "tiny" in presets else None)


def tensors(out: Any) -> list[Any]:
    """Every tensor inside a (nested) output: tensor, tuple, list, dict or dataclass."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in tensors(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in tensors(v)]
    if hasattr(out, "__dataclass_fields__"):
        return [t for k in out.__dataclass_fields__ for t in tensors(getattr(out, k))]
    return []


def _same(a: Any, b: Any, rtol: float = 0.0, atol: float = 0.0, what: str = "outputs") -> None:
    import torch

    ta, tb = tensors(a), tensors(b)
    assert len(ta) == len(tb), f"{what}: {len(ta)} tensors vs {len(tb)}"
    for i, (x, y) in enumerate(zip(ta, tb, strict=True)):
        assert x.shape == y.shape, f"{what}[{i}]: shape {tuple(x.shape)} vs {tuple(y.shape)}"
        if rtol == atol == 0.0:
            assert torch.equal(x, y), f"{what}[{i}] differ (max |Δ| {_maxdiff(x, y)})"
        else:
            torch.testing.assert_close(x, y, rtol=rtol, atol=atol, msg=f"{what}[{i}] differ")


def _maxdiff(x: Any, y: Any) -> float:
    if x.is_floating_point():
        return float((x.double() - y.double()).abs().max()) if x.numel() else 0.0
    return float((x != y).sum())


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
    _same(before, after, what="outputs after save/load")


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
    import torch

    cases = transform.example_cases() if hasattr(transform, "example_cases") else None
    if not cases:
        raise Skip("transform gives no example_cases()")
    import copy

    for model, inputs in cases:
        twin = transform.apply(copy.deepcopy(model))
        torch.manual_seed(0)
        a = model(**inputs)
        torch.manual_seed(0)
        b = twin(**inputs)
        _same(a, b, 1e-6, 1e-7, what="outputs after transform")


CHECKS: dict[str, dict[str, Callable[[Any], None]]] = {
    "model": {"config_roundtrip": model_config_roundtrip, "forward": model_forward,
              "save_load": model_save_load, "gradients": model_gradients,
              "eval_deterministic": model_eval_deterministic, "to_dtype": model_to_dtype,
              "checkpointing": model_checkpointing},
    "loss": {"finite": loss_finite, "differentiable": loss_differentiable},
    "metric": {"streaming": metric_streaming, "merge": metric_merge, "reset": metric_reset},
    "kernel": {"backends": kernel_backends, "dispatch": kernel_dispatch},
    "tokenizer": {"roundtrip": tokenizer_roundtrip, "save_load": tokenizer_save_load,
                  "special_tokens": tokenizer_special_tokens, "batch": tokenizer_batch},
    "transform": {"preserves": transform_preserves},
}


@dataclass(frozen=True)
class Case:
    """One contract check of one component."""

    ref: str
    check: str
    xfail: str = ""

    @property
    def id(self) -> str:
        return f"{self.ref}::{self.check}"

    def verify(self) -> None:
        """Run the check; raises ``Skip`` when it does not apply."""
        import torch

        comp = REGISTRY.get(self.ref)
        torch.manual_seed(0)
        CHECKS[comp.kind][self.check](build(comp))

    def run(self) -> None:
        """Run the check under pytest: ``Skip`` becomes a pytest skip."""
        import pytest

        try:
            self.verify()
        except Skip as e:
            pytest.skip(str(e))


def cases(
    plugin: str | None = None, kind: str | None = None, name: str | None = None,
    expected_failures: dict[str, str] | None = None,
) -> Iterator[Case]:
    """Every (component, check) pair, filtered by plugin, kind or component name.

    ``expected_failures`` maps a check name, or ``"kind:name::check"``, to the reason.
    """
    xf = expected_failures or {}
    for ref, comp in sorted(REGISTRY.components().items()):
        if (plugin and comp.plugin != plugin) or (kind and comp.kind != kind) \
                or (name and ref != name and comp.name != name):
            continue
        for check in CHECKS[comp.kind]:
            yield Case(ref, check, xf.get(f"{ref}::{check}", xf.get(check, "")))


def run_checks(**filters: Any) -> list[tuple[Case, str, str]]:
    """Run the checks; return ``(case, status, detail)`` with status passed/failed/skipped."""
    results = []
    for case in cases(**filters):
        try:
            case.verify()
        except Skip as e:
            results.append((case, "skipped", str(e)))
        except Exception as e:  # a failing check is a result, not a crash
            status = "xfailed" if case.xfail else "failed"
            results.append((case, status, f"{type(e).__name__}: {e}"))
        else:
            results.append((case, "xpassed" if case.xfail else "passed", ""))
    return results
