"""Every policy gives the gradients of the un-checkpointed run, on every zoo model that declares
checkpointing blocks (from whichever plugins are installed) and on our own small model."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from zoo_checkpoint.example import ResidualMLP, ResidualMLPConfig
from zoo_checkpoint.planner import minimum_bytes
from zoo_checkpoint.profiler import profile_blocks

import zoo_core as zoo
from zoo_core.testing import tensors

POLICIES = [("every", {}), ("every-k", {}), ("every-k", {"k": 3}), ("sqrt", {}),
            ("selective", {}), ("budget", {})]
# every-k runs the same segment engine as sqrt: the other plugins' models skip it (CI time)
FOREIGN = [("every", {}), ("sqrt", {}), ("selective", {}), ("budget", {})]


def _registered_models() -> list[Any]:
    """Every registered model: one that fails to load stays in, so its test fails with the
    error; one without checkpointing blocks or a tiny preset is skipped, saying so."""
    refs: list[Any] = []
    for ref, comp in sorted(zoo.REGISTRY.components().items()):
        if comp.kind != "model":
            continue
        try:
            factory = comp.load()
        except Exception:  # noqa: BLE001 - build() raises it again, inside the test
            refs.append(ref)
            continue
        if not getattr(factory, "supports_grad_checkpointing", False):
            refs.append(pytest.param(ref, marks=pytest.mark.skip(
                reason=f"{ref} declares no checkpointing blocks")))
        elif "tiny" not in getattr(factory, "presets", {}):
            refs.append(pytest.param(ref, marks=pytest.mark.skip(
                reason=f"{ref} has no 'tiny' preset to test on")))
        else:
            refs.append(ref)
    return refs


MODELS = ["own:residual-mlp", "own:residual-mlp-bn", *_registered_models()]


def build(ref: str) -> Any:
    torch.manual_seed(0)
    if ref == "own:residual-mlp":
        return ResidualMLP(ResidualMLPConfig(depth=5, dropout=0.2))
    if ref == "own:residual-mlp-bn":
        return ResidualMLP(ResidualMLPConfig(depth=4, dropout=0.0, batchnorm=True))
    return zoo.create(ref, preset="tiny")


def step(model: Any, inputs: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """One training step's gradients and the buffers after it (same seed every time)."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    out = model(**inputs)
    loss = sum((t.float() ** 2).mean() for t in tensors(out)
               if t.is_floating_point() and t.requires_grad)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return grads, {n: b.clone() for n, b in model.named_buffers()}


@pytest.mark.parametrize("ref", MODELS)
def test_gradients_equal_uncheckpointed(ref):
    model = build(ref)
    inputs = model.example_inputs()
    twin = copy.deepcopy(model)
    start = copy.deepcopy(model.state_dict())
    want, buffers = step(model, inputs)
    assert want, "the model produced no gradient"
    prof = profile_blocks(model, inputs, list(model.grad_checkpointing_blocks()))
    half = max(prof.total_none // 2, minimum_bytes(prof))  # some models cannot reach half
    policies = POLICIES if ref.startswith("own:") else FOREIGN
    for policy, options in policies:
        options = {"budget": half} if policy == "budget" else options
        twin = zoo.create("transform:checkpoint", policy=policy, inputs=inputs,
                          **options).apply(twin)
        twin.load_state_dict(start)  # the same buffers before each step
        got, got_buffers = step(twin, inputs)
        what = f"{ref} {policy}{options or ''}"
        assert got.keys() == want.keys(), f"{what}: other parameters get gradients"
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-6, atol=1e-6,
                                       msg=f"{what}: gradient of {name} differs")
        for name in buffers:  # BatchNorm running statistics updated once, as without
            torch.testing.assert_close(got_buffers[name], buffers[name], rtol=0, atol=0,
                                       msg=f"{what}: buffer {name} differs")


@pytest.mark.parametrize("ref", MODELS[:2] + [m for m in MODELS if m == "model:bert"])
def test_state_dict_unchanged_and_none_undoes(ref):
    model = build(ref)
    keys = list(model.state_dict())
    blocks = list(model.grad_checkpointing_blocks())
    model.set_grad_checkpointing("sqrt")
    assert all("forward" in b.__dict__ for b in blocks)
    assert list(model.state_dict()) == keys
    model.set_grad_checkpointing("every")  # replaces, never stacks
    assert all(b.__dict__["forward"].previous is None for b in blocks)
    model.set_grad_checkpointing("none")
    assert not any("forward" in b.__dict__ for b in blocks)
    assert list(model.state_dict()) == keys


@pytest.mark.parametrize("policy", ["every", "sqrt", "selective"])
def test_inputs_without_grad_and_frozen_first_layer(policy):
    model = build("own:residual-mlp")
    model.inp.requires_grad_(False)  # frozen embedding: the first block's input needs no grad
    inputs = model.example_inputs()
    want, _ = step(copy.deepcopy(model), inputs)
    got, _ = step(model.set_grad_checkpointing(policy), inputs)
    assert "inp.weight" not in got and got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("policy", ["every", "every-k", "selective"])
def test_autocast_bf16(policy):
    model = build("own:residual-mlp")
    inputs = model.example_inputs()
    twin = copy.deepcopy(model).set_grad_checkpointing(policy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, _ = step(model, inputs)
        got, _ = step(twin, inputs)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-6, atol=1e-6)


def test_no_grad_forward_is_untouched():
    model = build("own:residual-mlp").set_grad_checkpointing("sqrt").eval()
    with torch.no_grad():
        out = model(**model.example_inputs())
    assert out.grad_fn is None


def test_saved_bytes_order():
    from zoo_checkpoint import saved_bytes

    model = ResidualMLP(ResidualMLPConfig(width=32, hidden=128, depth=9, dropout=0.1))
    inputs = {"x": torch.randn(16, 32)}
    got = {p: saved_bytes(copy.deepcopy(model).set_grad_checkpointing(p), inputs)
           for p in ("none", "selective", "every", "every-k", "sqrt")}
    assert got["none"] > got["selective"] > got["every"] > got["every-k"] > got["sqrt"]


@pytest.mark.parametrize("policy", ["every", "sqrt"])
def test_deepcopy_of_a_checkpointed_model_is_independent(policy):
    model = build("own:residual-mlp").set_grad_checkpointing(policy)
    twin = copy.deepcopy(model)
    for a, b in zip(model.blocks, twin.blocks, strict=True):
        assert b.__dict__["forward"].block is b and a.__dict__["forward"].block is a
    inputs = model.example_inputs()
    want, _ = step(model, inputs)
    got, _ = step(twin, inputs)
    assert all(torch.equal(got[n], want[n]) for n in want)
