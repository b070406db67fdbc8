"""A key/value cache for autoregressive decoding.

Under a causal mask the keys and values of a position never change once computed, so a
decoder that generates token ``t`` needs to project only that token: the cache keeps
``K, V`` of positions ``0..t-1`` per layer and each step appends one column. A step then
costs O(t) attention and O(1) projections instead of re-running the whole prefix (O(t)
projections and O(t²) attention). Buffers are allocated once for ``max_len`` positions.

Example:
    >>> cache = KVCache(num_layers=2, max_len=16)
    >>> k_all, v_all = cache.update(0, k, v)   # (B, H, s, D) in, (B, H, length + s, D) out
    >>> cache.advance(k.shape[2])               # after every layer has seen the step
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from zoo_core import InputError

from .attention import MultiHeadAttention


class KVCache:
    """Keys and values (B, H, max_len, D) of each layer, filled up to :attr:`length`."""

    def __init__(self, num_layers: int, max_len: int) -> None:
        self.max_len = max_len
        self.length = 0
        self.keys: list[Tensor | None] = [None] * num_layers
        self.values: list[Tensor | None] = [None] * num_layers

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write ``k``, ``v`` (B, H, s, D) at positions ``length..length+s-1`` of ``layer``;
        return that layer's keys and values of positions ``0..length+s-1``."""
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise InputError(f"the cache holds {self.max_len} positions, step would reach "
                             f"{end!r}; make the cache longer (max_len) or decode fewer tokens")
        keys, values = self.keys[layer], self.values[layer]
        if keys is None or values is None:
            b, h, _, d = k.shape
            keys = self.keys[layer] = k.new_empty(b, h, self.max_len, d)
            values = self.values[layer] = v.new_empty(b, h, self.max_len, d)
        keys[:, :, self.length:end] = k
        values[:, :, self.length:end] = v
        return keys[:, :, :end], values[:, :, :end]

    def advance(self, steps: int) -> None:
        """Mark ``steps`` more positions as filled (call once per step, after all layers)."""
        self.length += steps

    def reorder(self, index: Tensor) -> None:
        """Keep the rows ``index`` (beam search: each surviving beam's parent)."""
        for store in (self.keys, self.values):
            for i, t in enumerate(store):
                if t is not None:
                    store[i] = t.index_select(0, index)


def cached_self_attention(attn: MultiHeadAttention, x: Tensor, cache: KVCache | None,
                          layer: int, key_padding_mask: Tensor | None = None) -> Tensor:
    """Causal self-attention of the new positions ``x`` (B, s, dim) over the cached ones and
    themselves; returns the concatenated heads (B, s, dim) before the output projection.

    ``key_padding_mask`` (B, length + s), True = attend, covers every key. Without a cache
    this is plain causal self-attention."""
    q, k, v = attn.project(x)  # (B, H, s, D)
    if cache is not None:
        k, v = cache.update(layer, k, v)  # (B, H, length + s, D)
    # bottom-right aligned: one new query may see every key, so it needs no causal mask
    out = attn.attend(q, k, v, key_padding_mask, causal=q.shape[2] > 1)
    return out.transpose(1, 2).flatten(2)


def cross_keys_values(attn: MultiHeadAttention, memory: Tensor) -> tuple[Tensor, Tensor]:
    """Keys and values (B, H, S, D) of an encoder ``memory`` (B, S, dim), computed once per
    decode: they are the same at every step."""
    b, s, _ = memory.shape
    w, bias = attn.qkv.weight, attn.qkv.bias
    kv = F.linear(memory, w[attn.dim:], None if bias is None else bias[attn.dim:])
    kv = kv.view(b, s, 2, attn.heads, -1).permute(2, 0, 3, 1, 4)  # (2, B, H, S, D)
    return kv[0], kv[1]


def cross_attention(attn: MultiHeadAttention, x: Tensor, keys: Tensor, values: Tensor,
                    key_padding_mask: Tensor | None) -> Tensor:
    """Attention of ``x`` (B, s, dim) to precomputed ``keys``/``values``; returns (B, s, dim)
    after the output projection."""
    b, s, _ = x.shape
    w, bias = attn.qkv.weight, attn.qkv.bias
    q = F.linear(x, w[:attn.dim], None if bias is None else bias[:attn.dim])
    q = q.view(b, s, attn.heads, -1).transpose(1, 2)  # (B, H, s, D)
    out = attn.attend(q, keys, values, key_padding_mask, causal=False)
    return attn.o(out.transpose(1, 2).flatten(2))
