"""Bad input raises a clear error naming the value; dispatch picks and refuses backends."""

from __future__ import annotations

import pytest
import torch

import zoo_core as zoo

ATTN = zoo.create("kernel:attention")


def qkv(b=1, h=2, hkv=2, sq=8, sk=8, d=16, dtype=torch.float32):
    return (torch.randn(b, h, sq, d, dtype=dtype), torch.randn(b, hkv, sk, d, dtype=dtype),
            torch.randn(b, hkv, sk, d, dtype=dtype))


def packed(total_q=10, total_k=10, h=2, d=16):
    return torch.randn(total_q, h, d), torch.randn(total_k, h, d), torch.randn(total_k, h, d)


CU = torch.tensor([0, 4, 10], dtype=torch.int32)


@pytest.mark.parametrize("args, kwargs, match", [
    (qkv()[:2] + (torch.randn(1, 2, 8, 16, dtype=torch.float64),), {}, "dtypes differ"),
    ((qkv()[0], torch.randn(1, 2, 9, 16), torch.randn(1, 2, 8, 16)), {}, r"\(1, 2, 9, 16\)"),
    (qkv(h=3, hkv=2), {}, "2 key/value heads do not divide 3"),
    (qkv(d=320), {}, "head dim 320"),
    ((torch.randn(2, 8, 16),) * 2 + (torch.randn(2, 8),), {}, r"expected \(B, H, S, D\)"),
    (qkv(), {"window": (-2, 0)}, r"window=\(-2, 0\)"),
    (qkv(), {"window": 5}, "window=5"),
    (qkv(), {"dropout_p": 1.0}, "dropout_p=1.0"),
    (qkv(), {"softcap": -1.0}, "softcap=-1.0"),
    (qkv(), {"alibi_slopes": torch.ones(3)}, r"alibi_slopes has shape \(3,\)"),
    (qkv(), {"key_padding_mask": torch.ones(1, 8)}, "key_padding_mask"),
    (packed(), {"cu_seqlens_q": torch.tensor([0, 6, 4, 10]),
                "cu_seqlens_k": torch.tensor([0, 3, 6, 10])}, r"\[0, 6, 4, 10\]"),
    (packed(), {"cu_seqlens_q": torch.tensor([0, 4, 9]), "cu_seqlens_k": CU},
     r"cu_seqlens_q\[-1\]=9 does not match the packed length 10"),
    (packed(), {"cu_seqlens_q": CU}, "needs both"),
    (packed(), {"cu_seqlens_q": CU, "cu_seqlens_k": CU, "max_seqlen_q": 3}, "max_seqlen_q=3"),
], ids=["dtype", "kv_shape", "gqa", "head_dim", "rank", "window_low", "window_type", "dropout",
        "softcap", "alibi", "kpm", "cu_monotonic", "cu_total", "cu_pair", "max_seqlen"])
def test_bad_input_names_the_value(args, kwargs, match):
    with pytest.raises(zoo.InputError, match=match):
        ATTN(*args, **kwargs)


def test_dispatch_on_cpu():
    q, k, v = qkv()
    assert ATTN.select(q, k, v) == "sdpa"
    assert ATTN.select(q, k, v, softcap=5.0) == "torch"
    assert ATTN.select(q, k, v, return_lse=True) == "torch"
    assert ATTN.select(q, k, v, dropout_p=0.1, seed=3) == "torch"
    assert ATTN.select(*packed(), cu_seqlens_q=CU, cu_seqlens_k=CU) == "torch"


def test_forced_backend_refusal_names_backend_and_reason():
    q, k, v = qkv()
    with pytest.raises(zoo.UnsupportedError, match="'sdpa'.*softcap"):
        ATTN(q, k, v, softcap=5.0, backend="sdpa")
    with pytest.raises(zoo.UnsupportedError, match="'triton'.*float64"):
        ATTN(*qkv(dtype=torch.float64), backend="triton")
    with pytest.raises(zoo.UnknownNameError, match="tritn"):
        ATTN(q, k, v, backend="tritn")
