"""GPU tests of the Triton kernels: bf16, large shapes, the options at odd sizes.

References: SDPA's math kernel in float32 on upcast inputs (peer), the formulas in float64
(naive.py) and, for options SDPA lacks (softcap, seeded dropout), the ``torch`` backend in
float32 (itself checked against the formulas on CPU). Errors are relative:
``‖got − ref‖ / ‖ref‖``.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

_path = pathlib.Path(__file__).with_name("naive.py")
_spec = importlib.util.spec_from_file_location("zoo_flashattn_tests_naive_gpu", _path)
naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(naive)


def attn():
    from zoo_flashattn.attention import Attention

    return Attention()


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def run(fn, inputs, do):
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*leaves)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(do.to(out.dtype))
    return [out.detach(), *(x.grad for x in leaves)]


def rand(*shape, dtype=torch.bfloat16, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return torch.randn(*shape, device="cuda", generator=g).to(dtype)


@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
def test_large_bf16_matches_sdpa_math(d, causal):
    b, h, s = 1, 16, 4096  # H % 16 == 0 like the benchmark: the same compiled kernels
    inputs = [rand(b, h, s, d, seed=i) for i in range(3)]
    do = rand(b, h, s, d, seed=9)
    got = run(lambda q, k, v: attn()(q, k, v, causal=causal, backend="triton"), inputs, do)
    with sdpa_kernel(SDPBackend.MATH):
        want = run(lambda q, k, v: F.scaled_dot_product_attention(
            q.float(), k.float(), v.float(), is_causal=causal), inputs, do.float())
    errs = [rel(g, w) for g, w in zip(got, want, strict=True)]
    assert max(errs) < 2e-2, errs
    assert got[0].dtype == torch.bfloat16


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_options_at_odd_sizes(dtype):
    b, h, hkv, sq, sk, d = 2, 4, 2, 333, 401, 96
    inputs = [rand(b, h, sq, d, dtype=dtype, seed=1), rand(b, hkv, sk, d, dtype=dtype, seed=2),
              rand(b, hkv, sk, d, dtype=dtype, seed=3)]
    do = rand(b, h, sq, d, dtype=dtype, seed=4)
    kpm = torch.rand(b, sk, device="cuda") > 0.2
    opts = dict(window=(100, 20), softcap=20.0, alibi_slopes=torch.rand(h, device="cuda"),
                key_padding_mask=kpm, dropout_p=0.1, seed=1234)
    got = run(lambda q, k, v: attn()(q, k, v, backend="triton", **opts), inputs, do)
    want = run(lambda q, k, v: attn()(q.float(), k.float(), v.float(), backend="torch", **opts),
               inputs, do.float())
    errs = [rel(g, w) for g, w in zip(got, want, strict=True)]
    assert max(errs) < 2e-2, errs


def test_varlen_bf16_matches_torch_backend():
    cu_q = torch.tensor([0, 700, 701, 1100, 1612], dtype=torch.int32, device="cuda")
    cu_k = torch.tensor([0, 650, 900, 1400, 2048], dtype=torch.int32, device="cuda")
    inputs = [rand(1612, 16, 128, seed=1), rand(2048, 4, 128, seed=2),
              rand(2048, 4, 128, seed=3)]
    do = rand(1612, 16, 128, seed=4)
    opts = dict(cu_seqlens_q=cu_q, cu_seqlens_k=cu_k, causal=True)
    got = run(lambda q, k, v: attn()(q, k, v, backend="triton", return_lse=True, **opts),
              inputs, do)
    want = run(lambda q, k, v: attn()(q.float(), k.float(), v.float(), backend="torch",
                                      return_lse=True, **opts), inputs, do.float())
    errs = [rel(g, w) for g, w in zip(got, want, strict=True)]
    assert max(errs) < 2e-2, errs


def test_fp32_ieee_matches_formula():
    inputs = [rand(1, 2, 300, 64, dtype=torch.float32, seed=i) for i in range(3)]
    do = rand(1, 2, 300, 64, dtype=torch.float32, seed=5)
    got = run(lambda q, k, v: attn()(q, k, v, causal=True, backend="triton"), inputs, do)
    want = run(lambda q, k, v: naive.attention(q, k, v, causal=True)[0],
               [x.cpu().double() for x in inputs], do.cpu().double())
    errs = [rel(g.cpu(), w) for g, w in zip(got, want, strict=True)]
    assert max(errs) < 1e-5, errs


def test_head_dim_256_bf16():
    inputs = [rand(2, 4, 500, 256, seed=i) for i in range(3)]
    do = rand(2, 4, 500, 256, seed=7)
    got = run(lambda q, k, v: attn()(q, k, v, causal=True, backend="triton"), inputs, do)
    with sdpa_kernel(SDPBackend.MATH):
        want = run(lambda q, k, v: F.scaled_dot_product_attention(
            q.float(), k.float(), v.float(), is_causal=True), inputs, do.float())
    errs = [rel(g, w) for g, w in zip(got, want, strict=True)]
    assert max(errs) < 2e-2, errs


def test_backward_is_deterministic():
    inputs = [rand(2, 8, 1000, 64, seed=1), rand(2, 2, 1000, 64, seed=2),
              rand(2, 2, 1000, 64, seed=3)]
    do = rand(2, 8, 1000, 64, seed=4)
    first = run(lambda q, k, v: attn()(q, k, v, causal=True, backend="triton"), inputs, do)
    again = run(lambda q, k, v: attn()(q, k, v, causal=True, backend="triton"), inputs, do)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_dispatch_picks_triton_and_other_backends_run():
    q = rand(2, 4, 256, 64)
    a = attn()
    assert a.select(q, q, q, causal=True) == "triton"
    kpm = torch.ones(2, 256, dtype=torch.bool, device="cuda")
    kpm[1, 200:] = False
    outs = {name: a(q, q, q, key_padding_mask=kpm, backend=name).float()
            for name in ("triton", "sdpa", "torch")}
    assert rel(outs["triton"], outs["torch"]) < 1e-2
    assert rel(outs["sdpa"], outs["torch"]) < 1e-2
