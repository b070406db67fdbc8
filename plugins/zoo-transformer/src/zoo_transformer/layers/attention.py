"""Multi-head scaled dot-product attention, Vaswani et al. 2017 (arXiv:1706.03762).

Eq. 1: ``Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V``; multi-head attention projects the
input ``h`` times, attends in each head and concatenates: ``MultiHead = Concat(head_1..h) Wᴼ``.

Three interchangeable implementations, chosen by name:

* ``eager``: the equation written out (materialises the ``(B, H, Sq, Sk)`` scores);
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention``;
* ``zoo``: ``kernel:attention`` from the zoo registry (the zoo-flashattn plugin).

Masks: ``key_padding_mask`` (B, Sk) bool, True = attend; ``causal`` hides later keys.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_core import ZooError

BACKENDS = ("eager", "sdpa", "zoo")


def check_backend(name: str) -> str:
    """Validate an attention backend name."""
    if name not in BACKENDS:
        raise ZooError(f"unknown attention backend {name!r}; valid: {list(BACKENDS)}. "
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
    """Self- or cross-attention with projections ``q``, ``k``, ``v`` and output ``o``.

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
            raise ZooError(f"hidden size {dim} is not divisible by the number of heads {heads}; "
                           "choose a head count that divides it")
        self.heads, self.dropout, self.backend = heads, dropout, check_backend(backend)
        self.q = nn.Linear(dim, dim, bias=bias)
        self.k = nn.Linear(dim, dim, bias=bias)
        self.v = nn.Linear(dim, dim, bias=bias)
        self.o = nn.Linear(dim, dim, bias=bias)
        self._kernel: Any = None

    def _split(self, x: Tensor) -> Tensor:  # (B, S, dim) -> (B, H, S, D)
        b, s, _ = x.shape
        return x.view(b, s, self.heads, -1).transpose(1, 2)

    def forward(self, x: Tensor, context: Tensor | None = None,
                key_padding_mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """Attend from ``x`` (B, Sq, dim) to ``context`` (B, Sk, dim), itself when None."""
        ctx = x if context is None else context
        q, k, v = self._split(self.q(x)), self._split(self.k(ctx)), self._split(self.v(ctx))
        out = self.attend(q, k, v, key_padding_mask, causal)  # (B, H, Sq, D)
        b, _, sq, _ = out.shape
        return self.o(out.transpose(1, 2).reshape(b, sq, -1))

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
