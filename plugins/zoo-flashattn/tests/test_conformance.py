"""F.scaled_dot_product_attention's everyday calls, run twice with only the function swapped:
``F.scaled_dot_product_attention`` or ``zoo.create("kernel:attention")``. Written from
SDPA's documentation; fp32 on the CPU, compared within fp32 tolerance."""

from __future__ import annotations

import ast
import functools
import inspect

import pytest
import torch
import torch.nn.functional as F

import zoo_core as zoo

ATTN = zoo.create("kernel:attention")
TOL = {"rtol": 2e-5, "atol": 2e-6}


def _r(*shape, gen):
    return torch.randn(*shape, generator=gen)


def everyday(sdpa, dropout: bool = True) -> dict:
    """SDPA's documented usage; ``sdpa`` is the function under test (``dropout``: include
    the call whose mask SDPA draws from torch's generator)."""
    g = torch.Generator().manual_seed(0)
    out = {}
    q, k, v = _r(2, 4, 9, 16, gen=g), _r(2, 4, 9, 16, gen=g), _r(2, 4, 9, 16, gen=g)
    out["plain"] = sdpa(q, k, v)
    out["causal"] = sdpa(q, k, v, is_causal=True)
    out["scale"] = sdpa(q, k, v, scale=0.3)
    out["keywords"] = sdpa(query=q, key=k, value=v, attn_mask=None, dropout_p=0.0,
                           is_causal=False, scale=None)
    kc, vc = _r(2, 4, 13, 16, gen=g), _r(2, 4, 13, 16, gen=g)
    out["causal_sq_lt_sk"] = sdpa(q, kc, vc, is_causal=True)          # top-left aligned
    out["causal_sq_gt_sk"] = sdpa(kc, q, v, is_causal=True)
    bool_mask = torch.rand(9, 13, generator=g) > 0.3                   # (Sq, Sk), broadcast
    bool_mask[:, 0] = True
    out["bool_mask"] = sdpa(q, kc, vc, attn_mask=bool_mask)
    row_mask = torch.rand(2, 1, 1, 13, generator=g) > 0.5              # per batch keys
    row_mask[..., 0] = True
    out["bool_key_mask"] = sdpa(q, kc, vc, attn_mask=row_mask)
    bias = _r(2, 4, 9, 13, gen=g)                                      # float, full shape
    out["float_mask"] = sdpa(q, kc, vc, attn_mask=bias)
    out["float_mask_heads"] = sdpa(q, kc, vc, attn_mask=_r(4, 1, 13, gen=g))
    ninf = torch.zeros(9, 13).masked_fill(~bool_mask, float("-inf"))
    out["additive_inf"] = sdpa(q, kc, vc, attn_mask=ninf, scale=0.5)
    kg, vg = _r(2, 2, 9, 16, gen=g), _r(2, 2, 9, 16, gen=g)            # GQA
    out["gqa"] = sdpa(q, kg, vg, is_causal=True, enable_gqa=True)
    out["three_d"] = sdpa(q[:, 0], k[:, 0], v[:, 0], attn_mask=bool_mask[:, :9])
    out["five_d"] = sdpa(q.view(2, 2, 2, 9, 16), k.view(2, 2, 2, 9, 16),
                         v.view(2, 2, 2, 9, 16), attn_mask=bias[..., :9].view(2, 2, 2, 9, 9))
    # gradients through q, k, v and a float mask
    qs, ks, vs = (t.clone().requires_grad_() for t in (q, kc, vc))
    bs = bias.clone().requires_grad_()
    y = sdpa(qs, ks, vs, attn_mask=bs)
    y.pow(2).sum().backward()
    out["grads"] = [t.grad for t in (qs, ks, vs, bs)]
    if not dropout:
        return out
    # dropout: the same torch seed draws SDPA's own mask
    torch.manual_seed(5)
    out["dropout"] = sdpa(q, k, v, dropout_p=0.3, attn_mask=bool_mask[:, :9])
    return out


@pytest.mark.parametrize("backend", [None, "torch"])
def test_everyday_usage_matches_sdpa(backend):
    """Auto dispatch (masked calls go to SDPA), and our blockwise backend forced (its own
    masks and mask gradient; its dropout follows seed=, not SDPA's generator)."""
    ours = everyday(functools.partial(ATTN, backend=backend), dropout=backend is None)
    ref = everyday(F.scaled_dot_product_attention, dropout=backend is None)
    assert ours.keys() == ref.keys()
    for key in ref:
        a, b = ours[key], ref[key]
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b],
                        strict=True):
            assert x.shape == y.shape, key
            torch.testing.assert_close(x, y, **TOL, msg=key)


def test_signature_is_sdpas_then_ours():
    """SDPA is a builtin without a signature object: its documented one opens its docstring,
    ``scaled_dot_product_attention(query, key, value, attn_mask=None, ...) -> Tensor``."""
    doc = F.scaled_dot_product_attention.__doc__.split(") -> Tensor")[0]
    documented = [p.strip().split("=") for p in doc[doc.index("(") + 1:].split(",")]
    assert [p[0] for p in documented][:4] == ["query", "key", "value", "attn_mask"]
    sig = inspect.signature(ATTN)
    names = list(sig.parameters)
    assert names[:len(documented)] == [p[0] for p in documented]
    for name, *default in documented:
        want = default and ast.literal_eval(default[0])
        assert default == [] or sig.parameters[name].default == want, name
    assert {"causal", "window", "softcap", "return_lse", "backend"} <= set(names)


@pytest.mark.parametrize("kwargs, match", [
    ({"attn_mask": torch.ones(9, 9, dtype=torch.bool), "is_causal": True}, "pass one"),
    ({"attn_mask": torch.ones(3, 9)}, r"\(3, 9\)"),
    ({"attn_mask": torch.ones(9, 9, dtype=torch.int64)}, "bool tensor"),
    ({"scale": 0.1, "sm_scale": 0.2}, "same factor"),
])
def test_bad_sdpa_arguments(kwargs, match):
    q = torch.randn(1, 2, 9, 8)
    with pytest.raises(zoo.InputError, match=match):
        ATTN(q, q, q, **kwargs)


def test_mask_calls_pick_sdpa_and_forced_triton_refuses():
    q = torch.randn(1, 2, 9, 8)
    mask = torch.ones(9, 9, dtype=torch.bool)
    assert ATTN.select(q, q, q, attn_mask=mask) == "sdpa"
    assert ATTN.why_not("triton", q, q, q, attn_mask=mask) is not None


def test_mask_with_our_options_runs_on_torch_against_the_reference():
    """attn_mask with softcap and the log-sum-exp: SDPA has neither; the torch backend runs."""
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 2, 11, 8, generator=g, dtype=torch.float64) for _ in range(3))
    bias = torch.randn(2, 1, 11, generator=g, dtype=torch.float64)
    kw = {"attn_mask": bias, "softcap": 1.5, "return_lse": True}
    assert ATTN.select(q, k, v, **kw) == "torch"
    out, lse = ATTN(q, k, v, **kw)
    ref_out, ref_lse = ATTN.reference(q, k, v, **kw)
    torch.testing.assert_close(out, ref_out, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(lse, ref_lse, rtol=1e-7, atol=1e-9)
