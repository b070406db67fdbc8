"""Forward and backward of every backend against attention written out in float64.

The Triton kernels run on CPU in Triton's interpreter (conftest sets TRITON_INTERPRET=1), so
shapes stay tiny; the GPU tests (test_gpu.py) cover bf16 and large shapes.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import torch
import torch.nn.functional as F

import zoo_core as zoo

_path = pathlib.Path(__file__).with_name("naive.py")
_spec = importlib.util.spec_from_file_location("zoo_flashattn_tests_naive", _path)
naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(naive)

ATTN = None


def attn():
    global ATTN
    if ATTN is None:
        ATTN = zoo.create("kernel:attention")
    return ATTN


CASES = {
    "odd_lengths": dict(b=2, h=2, hkv=2, sq=19, sk=23, d=16),
    "causal_sq_lt_sk": dict(b=1, h=2, hkv=2, sq=13, sk=29, d=24, causal=True),
    "causal_sq_gt_sk": dict(b=1, h=2, hkv=2, sq=29, sk=13, d=16, causal=True),
    "mqa": dict(b=1, h=4, hkv=1, sq=21, sk=21, d=16, causal=True),
    "window": dict(b=1, h=2, hkv=1, sq=33, sk=33, d=16, window=(5, 3)),
    "softcap": dict(b=1, h=2, hkv=2, sq=17, sk=20, d=16, softcap=1.5, sm_scale=0.9),
    "alibi": dict(b=2, h=2, hkv=2, sq=18, sk=18, d=16, alibi=True, causal=True),
    "padding": dict(b=2, h=2, hkv=1, sq=17, sk=21, d=16, kpm=True),
    "dropout": dict(b=1, h=2, hkv=2, sq=20, sk=20, d=16, dropout_p=0.3, seed=11),
    "head_dim_40": dict(b=1, h=2, hkv=2, sq=17, sk=17, d=40, causal=True),
    "everything": dict(b=2, h=4, hkv=2, sq=19, sk=22, d=24, window=(6, 1), softcap=2.0,
                       alibi=True, kpm=True, dropout_p=0.2, seed=3),
}


def make(case: dict, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, h, hkv, sq, sk, d = (case[x] for x in ("b", "h", "hkv", "sq", "sk", "d"))
    q = torch.randn(b, h, sq, d, generator=g).to(dtype)
    k = torch.randn(b, hkv, sk, d, generator=g).to(dtype)
    v = torch.randn(b, hkv, sk, d, generator=g).to(dtype)
    do = torch.randn(b, h, sq, d, generator=g).to(dtype)
    opts = {key: case[key] for key in ("causal", "window", "softcap", "sm_scale", "dropout_p",
                                       "seed") if key in case}
    if case.get("alibi"):
        opts["alibi_slopes"] = torch.rand(b, h, generator=g) * 0.5
    if case.get("kpm"):
        kpm = torch.rand(b, sk, generator=g) > 0.3
        kpm[-1] = False  # a batch element with every key hidden: zero output, -inf lse
        opts["key_padding_mask"] = kpm
    return (q, k, v), do, opts


def run(fn, inputs, do):
    """Output, lse and input gradients of ``fn``."""
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    out, lse = fn(*leaves)
    (out.float() * do.float()).sum().backward()
    return [out.detach(), lse.detach(), *(x.grad for x in leaves)]


def check(got, want, atol, rtol=1e-3):
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), got, want, strict=True):
        torch.testing.assert_close(a.double(), b.double(), atol=atol, rtol=rtol, msg=name)


def expected(inputs, do, opts):
    return run(lambda q, k, v: naive.attention(q, k, v, **opts), [x.double() for x in inputs],
               do.double())


def backend(name, **opts):
    return lambda q, k, v: attn()(q, k, v, backend=name, return_lse=True, **opts)


@pytest.fixture
def small_tiles(monkeypatch):
    """16 × 16 tiles in the torch backend, so that tests cross tile edges."""
    from zoo_flashattn import torch_backend

    monkeypatch.setattr(torch_backend, "BLOCK", 16)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_torch_backend_matches_naive(case, small_tiles):
    inputs, do, opts = make(CASES[case])
    check(run(backend("torch", **opts), inputs, do), expected(inputs, do, opts), atol=2e-5)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_triton_matches_naive_and_torch(case, small_tiles):
    inputs, do, opts = make(CASES[case])
    got = run(backend("triton", **opts), inputs, do)
    check(got, expected(inputs, do, opts), atol=2e-5)
    check(got, run(backend("torch", **opts), inputs, do), atol=2e-5)


def test_triton_fp16():
    inputs, do, opts = make(dict(b=1, h=2, hkv=1, sq=24, sk=24, d=32, causal=True),
                            torch.float16)
    got = run(backend("triton", **opts), inputs, do)
    check(got, expected(inputs, do, opts), atol=1e-2, rtol=1e-2)
    assert got[0].dtype == got[2].dtype == torch.float16


def _packed(seed=0):
    g = torch.Generator().manual_seed(seed)
    cu_q, cu_k = [0, 5, 5, 24, 31], [0, 9, 12, 30, 33]  # one empty query sequence
    q = torch.randn(cu_q[-1], 4, 24, generator=g)
    k, v = (torch.randn(cu_k[-1], 2, 24, generator=g) for _ in range(2))
    do = torch.randn(cu_q[-1], 4, 24, generator=g)
    return (q, k, v), do, cu_q, cu_k


@pytest.mark.parametrize("name", ["torch", "triton"])
@pytest.mark.parametrize("opts", [dict(causal=True), dict(window=(4, 4), softcap=3.0,
                                                          dropout_p=0.25, seed=9)],
                         ids=["causal", "options"])
def test_varlen_matches_naive(name, opts, small_tiles):
    inputs, do, cu_q, cu_k = _packed()
    cu = dict(cu_seqlens_q=torch.tensor(cu_q, dtype=torch.int32),
              cu_seqlens_k=torch.tensor(cu_k, dtype=torch.int32))
    got = run(backend(name, **cu, **opts), inputs, do)
    want = run(lambda q, k, v: naive.varlen(q, k, v, cu_q, cu_k, **opts),
               [x.double() for x in inputs], do.double())
    check(got, want, atol=2e-5)


@pytest.mark.parametrize("opts", [dict(), dict(causal=True), dict(window=(3, 2))],
                         ids=["plain", "causal", "window"])
def test_torch_backend_matches_sdpa(opts):
    """Peer check: SDPA's math in float64 with the equivalent boolean mask."""
    inputs, do, _ = make(dict(b=2, h=4, hkv=2, sq=40, sk=40, d=16), torch.float64)
    kpm = torch.rand(2, 40, generator=torch.Generator().manual_seed(1)) > 0.2
    kpm[:, 0] = True
    sq = sk = 40
    i, j = torch.arange(sq)[:, None], torch.arange(sk)[None, :]
    left, right = opts.get("window", (-1, -1))
    right = 0 if opts.get("causal") else right
    ok = ((j <= i + right) | (right < 0)) & ((j >= i - left) | (left < 0))
    mask = ok[None, None] & kpm[:, None, None, :]
    want = run(lambda q, k, v: (F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, enable_gqa=True), torch.zeros(())), inputs, do)
    got = run(lambda q, k, v: (attn()(q, k, v, backend="torch", key_padding_mask=kpm, **opts),
                               torch.zeros(())), inputs, do)
    check(got, want, atol=1e-10)


@pytest.mark.parametrize("extra", [dict(alibi=True, window=(4, 2)), dict(causal=True)],
                         ids=["alibi_window", "causal"])
def test_sdpa_backend_matches_naive(extra):
    inputs, do, opts = make(CASES["padding"] | extra)
    got = run(lambda q, k, v: (attn()(q, k, v, backend="sdpa", **opts), torch.zeros(1)),
              inputs, do)
    want = expected(inputs, do, opts)
    for i in (0, 2, 3, 4):
        torch.testing.assert_close(got[i].double(), want[i], atol=2e-5, rtol=1e-3)


def test_dropout_mask_statistics_and_seed():
    q = k = v = torch.ones(1, 1, 64, 16)
    v = torch.eye(64)[None, None, :, :16].contiguous()
    a = attn()(q, k, v, dropout_p=0.4, seed=1, backend="torch")
    b = attn()(q, k, v, dropout_p=0.4, seed=1, backend="torch")
    c = attn()(q, k, v, dropout_p=0.4, seed=2, backend="torch")
    assert torch.equal(a, b) and not torch.equal(a, c)
    kept = naive.keep_mask(1, 0, 1, 1, 4096, 64, 0.4).float().mean().item()
    assert abs(kept - 0.6) < 0.01
    torch.manual_seed(5)
    d = attn()(q, k, v, dropout_p=0.4, backend="torch")
    torch.manual_seed(5)
    assert torch.equal(d, attn()(q, k, v, dropout_p=0.4, backend="torch"))
