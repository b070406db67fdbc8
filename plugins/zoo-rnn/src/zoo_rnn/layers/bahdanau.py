"""Additive attention (Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning
to Align and Translate", ICLR 2015, arXiv:1409.0473, §3.1 and appendix A.1.2):

    e_tj = v_aᵀ tanh(W_a s_{t−1} + U_a h_j)
    α_tj = exp(e_tj) / Σ_k exp(e_tk)          (over the real source positions only)
    c_t  = Σ_j α_tj h_j

U_a h_j does not depend on t and is computed once per source batch (:meth:`keys`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AdditiveAttention(nn.Module):
    """Bahdanau attention of a decoder state over encoder annotations.

    Args:
        query_size: features of the decoder state s_{t−1}.
        key_size: features of the annotations h_j.
        attn_size: width of the hidden layer of the alignment model.

    Example:
        >>> attn = AdditiveAttention(16, 32, 24)
        >>> memory = torch.randn(4, 7, 32)                   # (B, S, K)
        >>> ctx, alpha = attn(torch.randn(4, 16), attn.keys(memory), memory)
    """

    def __init__(self, query_size: int, key_size: int, attn_size: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_size, attn_size, bias=False)   # W_a
        self.key = nn.Linear(key_size, attn_size)                   # U_a (bias: b_a)
        self.score = nn.Linear(attn_size, 1, bias=False)            # v_a

    def keys(self, memory: Tensor) -> Tensor:
        """U_a h_j for every source position: (B, S, K) → (B, S, A)."""
        return self.key(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor,
                mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """query (B, Q), keys (B, S, A), memory (B, S, K), mask (B, S) True = real.

        Returns the context c_t (B, K) and the weights α_t (B, S).
        """
        e = self.score(torch.tanh(self.query(query)[:, None] + keys)).squeeze(-1)  # (B, S)
        if mask is not None:
            e = e.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(e, dim=-1)                                           # (B, S)
        return torch.bmm(alpha[:, None], memory).squeeze(1), alpha                 # (B, K)
