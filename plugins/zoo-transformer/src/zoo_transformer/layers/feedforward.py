"""Position-wise feed-forward network, Vaswani et al. 2017 (arXiv:1706.03762), Eq. 2.

``FFN(x) = act(x W1 + b1) W2 + b2``, applied to each position separately.
"""

from __future__ import annotations

from torch import Tensor, nn

from .activations import activation


class FeedForward(nn.Module):
    """Two linear maps with an activation between them.

    Args:
        dim: model width.
        hidden: inner width (``intermediate_size``).
        act: activation name (see :mod:`.activations`).
        dropout: dropout on the output.
    """

    def __init__(self, dim: int, hidden: int, act: str = "gelu", dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = activation(act)
        self.dropout = nn.Dropout(dropout)

    def hidden(self, x: Tensor) -> Tensor:  # (B, S, dim) -> (B, S, hidden)
        return self.act(self.fc1(x))

    def forward(self, x: Tensor) -> Tensor:  # (B, S, dim) -> (B, S, dim)
        return self.dropout(self.fc2(self.hidden(x)))
