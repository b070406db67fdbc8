"""Elman recurrent cell (Elman, "Finding Structure in Time", Cognitive Science 1990).

    h_t = φ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh),   φ ∈ {tanh, relu}

Parameter names and shapes follow ``torch.nn.RNNCell``, so state dicts move both ways.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_core import ConfigError

from ._init import check_sizes, uniform_

NONLINEARITIES = ("tanh", "relu")


class RNNCell(nn.Module):
    """One step of an Elman RNN.

    Args:
        input_size: features of x_t.
        hidden_size: features of h_t.
        bias: learn b_ih and b_hh.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Example:
        >>> cell = RNNCell(8, 16)
        >>> h = cell(torch.randn(4, 8))          # (B, H), h_0 = 0
    """

    gates = 1
    plain = True  # the fused recurrence applies (no extra terms)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh") -> None:
        super().__init__()
        check_sizes("RNNCell", input_size=input_size, hidden_size=hidden_size)
        if nonlinearity not in NONLINEARITIES:
            raise ConfigError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; valid: "
                              f"{NONLINEARITIES}")
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(hidden_size)) if bias else None
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
        """One step given the input projection ``gx = W_ih x_t + b_ih`` (B, H)."""
        pre = gx + F.linear(h, self.weight_hh, self.bias_hh)
        return torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """x (B, I) or (I,); h (B, H) or (H,), zeros when omitted → h' of h's shape."""
        if h is None:
            h = x.new_zeros(*x.shape[:-1], self.hidden_size)
        return self.step(self.project_input(x), h)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"
