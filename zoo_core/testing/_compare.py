"""Comparing the outputs of two calls, tensor by tensor, for the contract checks."""

from __future__ import annotations

from typing import Any


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


def same(a: Any, b: Any, rtol: float = 0.0, atol: float = 0.0, what: str = "outputs") -> None:
    import torch

    ta, tb = tensors(a), tensors(b)
    assert len(ta) == len(tb), f"{what}: {len(ta)} tensors vs {len(tb)}"
    for i, (x, y) in enumerate(zip(ta, tb, strict=True)):
        assert x.shape == y.shape, f"{what}[{i}]: shape {tuple(x.shape)} vs {tuple(y.shape)}"
        if rtol == atol == 0.0:
            assert torch.equal(x, y), f"{what}[{i}] differ (max |Δ| {maxdiff(x, y)})"
        else:
            torch.testing.assert_close(x, y, rtol=rtol, atol=atol, msg=f"{what}[{i}] differ")


def maxdiff(x: Any, y: Any) -> float:
    if x.is_floating_point():
        return float((x.double() - y.double()).abs().max()) if x.numel() else 0.0
    return float((x != y).sum())
