"""Gated recurrent unit cell (Cho et al., "Learning Phrase Representations using RNN
Encoder–Decoder for Statistical Machine Translation", 2014, arXiv:1406.1078), in the variant
where the reset gate multiplies the recurrent term after its projection:

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

Gates are stacked (r, z, n) in ``weight_ih`` (3H, I) and ``weight_hh`` (3H, H), as in
``torch.nn.GRUCell``, so state dicts move both ways.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._init import check_sizes, uniform_


class GRUCell(nn.Module):
    """One step of a GRU.

    Args:
        input_size: features of x_t.
        hidden_size: features of h_t.
        bias: learn b_ih and b_hh.

    Example:
        >>> cell = GRUCell(8, 16)
        >>> h = cell(torch.randn(4, 8))          # (B, H), h_0 = 0
    """

    gates = 3
    plain = True  # the fused recurrence applies (no extra terms)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        check_sizes("GRUCell", input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.reset_parameters()

    @property
    def state_size(self) -> int:
        return self.hidden_size

    def reset_parameters(self) -> None:
        uniform_(self, self.hidden_size)

    def project_input(self, x: Tensor) -> Tensor:
        """W_ih x + b_ih for any leading shape."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step(self, gx: Tensor, h: Tensor) -> Tensor:
        """One step given the input projection ``gx = W_ih x_t + b_ih`` (B, 3H)."""
        x_r, x_z, x_n = gx.chunk(3, -1)
        h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, -1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return n + z * (h - n)  # (1 − z) n + z h

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """x (B, I) or (I,); h (B, H) or (H,), zeros when omitted → h' of h's shape."""
        if h is None:
            h = x.new_zeros(*x.shape[:-1], self.hidden_size)
        return self.step(self.project_input(x), h)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"
