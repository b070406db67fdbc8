"""Position-wise feed-forward network, Vaswani et al. 2017 (arXiv:1706.03762), Eq. 2.

``FFN(x) = act(x W1 + b1) W2 + b2``, applied to each position separately.
"""

from __future__ import annotations

from torch import Tensor, nn

from .activations import IN_PLACE, activation


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
        self.act_in_place = IN_PLACE.get(act, self.act)
        self.dropout = nn.Dropout(dropout)

    def hidden(self, x: Tensor, in_place: bool = False) -> Tensor:  # (…, dim) -> (…, hidden)
        """``act(x W1 + b1)``; ``in_place`` applies the activation in the product's own
        memory (inference only: autograd needs the product)."""
        return (self.act_in_place if in_place else self.act)(self.fc1(x))

    def forward(self, x: Tensor) -> Tensor:  # (B, S, dim) -> (B, S, dim)
        return self.dropout(self.fc2(self.hidden(x)))
