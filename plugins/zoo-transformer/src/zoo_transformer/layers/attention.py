"""Multi-head scaled dot-product attention, Vaswani et al. 2017 (arXiv:1706.03762).

Eq. 1: ``Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V``; multi-head attention projects the
input ``h`` times, attends in each head and concatenates: ``MultiHead = Concat(head_1..h) Wᴼ``.

Three interchangeable implementations, chosen by name:

* ``eager``: the equation written out (materialises the ``(B, H, Sq, Sk)`` scores);
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention``;
* ``zoo``: ``kernel:attention`` from the zoo registry (the zoo-flashattn plugin).

Masks: ``key_padding_mask`` (B, Sk) bool, True = attend; ``causal`` hides later keys.

The three input projections are one ``(3·dim, dim)`` matrix ``qkv`` (rows ``W_Q; W_K; W_V``,
the layout of ``torch.nn.MultiheadAttention``'s ``in_proj_weight``): self-attention projects
with one matrix product, cross-attention takes ``W_Q`` for the queries and ``W_K; W_V`` for
the context.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_core import ConfigError, ZooError

from .packing import Packing

BACKENDS = ("eager", "sdpa", "zoo")


def check_backend(name: str) -> str:
    """Validate an attention backend name."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown attention backend {name!r}; valid: {list(BACKENDS)}. "
                       "Set the config field attn_backend to one of them.")
    return name


def _zoo_kernel() -> Any:
    import zoo_core as zoo

    try:
        return zoo.create("kernel:attention")
    except ZooError as e:
        raise ZooError("attention backend 'zoo' needs the component 'kernel:attention', which "
                       f"no installed plugin provides ({e}). Install zoo-flashattn, or set "
                       "attn_backend='sdpa' or 'eager'.") from None


def _bool_mask(key_padding_mask: Tensor | None, causal: bool, sq: int, sk: int,
               device: torch.device) -> Tensor | None:
    """A (B or 1, 1, Sq, Sk) bool mask, True = attend, or None when nothing is hidden."""
    mask = None
    if key_padding_mask is not None:
        mask = key_padding_mask[:, None, None, :]  # (B, 1, 1, Sk)
    if causal:
        tri = torch.ones(sq, sk, dtype=torch.bool, device=device).tril(sk - sq)  # (Sq, Sk)
        mask = tri[None, None] if mask is None else mask & tri
    return mask


def eager_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None,
                    dropout: float, training: bool) -> Tensor:
    """Eq. 1 written out; ``mask`` is bool, True = attend."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Sq, Sk)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = F.dropout(scores.softmax(dim=-1), dropout, training)
    return probs @ v  # (B, H, Sq, D)


class MultiHeadAttention(nn.Module):
    """Self- or cross-attention with the fused input projection ``qkv`` and output ``o``.

    Args:
        dim: model width (split into ``heads`` heads of ``dim // heads``).
        heads: number of heads.
        dropout: dropout on the attention probabilities (training only).
        backend: ``"eager"``, ``"sdpa"`` or ``"zoo"``.
        bias: whether the projections have biases.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, backend: str = "sdpa",
                 bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"hidden size {dim!r} is not divisible by the number of heads "
                              f"{heads!r}; choose a head count that divides it")
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.backend = check_backend(backend)
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.o = nn.Linear(dim, dim, bias=bias)
        # resolved here, not on the first call: torch.compile cannot trace an import
        self._kernel: Any = _zoo_kernel() if self.backend == "zoo" else None

    def project(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Heads q (B, H, Sq, D), k and v (B, H, Sk, D), views of the projections."""
        b, sq, _ = x.shape
        if context is None:  # one matrix product for the three projections
            qkv = self.qkv(x).view(b, sq, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            return qkv[0], qkv[1], qkv[2]
        w, bias = self.qkv.weight, self.qkv.bias
        q = F.linear(x, w[:self.dim], None if bias is None else bias[:self.dim])
        kv = F.linear(context, w[self.dim:], None if bias is None else bias[self.dim:])
        kv = kv.view(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        return q.view(b, sq, self.heads, -1).transpose(1, 2), kv[0], kv[1]

    def mix(self, x: Tensor, context: Tensor | None = None,
            key_padding_mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """The concatenated heads (B, Sq, dim), before the output projection ``o``."""
        out = self.attend(*self.project(x, context), key_padding_mask, causal)  # (B, H, Sq, D)
        return out.transpose(1, 2).flatten(2)

    def mix_packed(self, x: Tensor, packing: Packing) -> Tensor:
        """:meth:`mix` of self-attention on packed tokens ``x`` (N, dim), each sequence
        attending to its own tokens, → (N, dim). Attention itself runs on the padded batch
        in one call (projections scattered there, the mixture gathered back): a call per
        sequence would skip the padded keys, but costs a thread-pool round per sequence."""
        n, (b, s) = x.shape[0], packing.shape
        qkv = packing.unpack(self.qkv(x))  # (B, S, 3·dim), zeros at the padding
        q, k, v = qkv.view(b, s, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # (B, heads, S, D)
        out = self.attend(q, k, v, packing.mask, False)  # (B, heads, S, D)
        return packing.pack(out.transpose(1, 2)).reshape(n, self.dim)

    def forward(self, x: Tensor, context: Tensor | None = None,
                key_padding_mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """Attend from ``x`` (B, Sq, dim) to ``context`` (B, Sk, dim), itself when None."""
        return self.o(self.mix(x, context, key_padding_mask, causal))

    def attend(self, q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None,
               causal: bool) -> Tensor:
        """Run the configured backend on (B, H, S, D) heads."""
        p = self.dropout if self.training else 0.0
        if self.backend == "zoo":
            if self._kernel is None:
                self._kernel = _zoo_kernel()
            return self._kernel(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                                dropout_p=p)
        mask = _bool_mask(key_padding_mask, causal, q.shape[2], k.shape[2], q.device)
        if self.backend == "eager":
            return eager_attention(q, k, v, mask, p, self.training)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)


def add_linear(residual: Tensor, x: Tensor, linear: nn.Linear, dropout: nn.Dropout,
               in_place: bool = False) -> Tensor:
    """``residual + dropout(linear(x))``; without active dropout, one in-place matrix product
    onto ``residual + bias`` instead of writing the bias out and adding the residual apart
    (in-place products are outside autocast: under it, the plain sum). ``in_place`` writes
    the sum over ``residual`` (inference, where nothing else reads it)."""
    if (dropout.training and dropout.p) or linear.bias is None or x.is_meta \
            or torch.is_autocast_enabled(x.device.type):
        return residual + dropout(linear(x))
    out = (residual.add_(linear.bias) if in_place else residual + linear.bias).flatten(0, -2)
    return out.addmm_(x.flatten(0, -2), linear.weight.t()).view(residual.shape)
