"""Long short-term memory cell (Hochreiter & Schmidhuber, Neural Computation 1997; forget gate
from Gers et al. 2000), with the options used in practice:

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi [+ w_ci ⊙ c_{t−1}])
    f_t = σ(W_if x_t + b_if + W_hf h_{t−1} + b_hf [+ w_cf ⊙ c_{t−1}])
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t−1} + b_hg)
    c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
    o_t = σ(W_io x_t + b_io + W_ho h_{t−1} + b_ho [+ w_co ⊙ c_t])
    m_t = o_t ⊙ tanh(c_t)
    h_t = m_t, or h_t = W_hr m_t with a projection (Sak et al. 2014, arXiv:1402.1128,
          ``proj_size`` in ``torch.nn.LSTM``)

Options: peephole connections ``w_c·`` (Gers & Schmidhuber 2000), and layer normalisation
(Ba et al. 2016, arXiv:1607.06450, §3.1): LN(W_i· x_t) and LN(W_h· h_{t−1}) over the four
stacked gates before the biases are added, and tanh(LN(c_t)) in place of tanh(c_t).

Gates are stacked (i, f, g, o) as in ``torch.nn.LSTMCell``, whose state dicts load both ways.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_core import ConfigError

from ._init import check_sizes, uniform_


class LSTMCell(nn.Module):
    """One step of an LSTM.

    Args:
        input_size: features of x_t.
        hidden_size: features of c_t (and of h_t without a projection).
        bias: learn b_ih and b_hh.
        proj_size: when > 0, h_t = W_hr m_t has this many features.
        peephole: add the diagonal peephole terms w_ci, w_cf, w_co.
        layer_norm: normalise the input and recurrent gate sums and the cell state.

    Example:
        >>> cell = LSTMCell(8, 16)
        >>> h, c = cell(torch.randn(4, 8))       # (B, H), (B, H); state 0 when omitted
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, proj_size: int = 0,
                 peephole: bool = False, layer_norm: bool = False) -> None:
        super().__init__()
        check_sizes("LSTMCell", input_size=input_size, hidden_size=hidden_size)
        if not isinstance(proj_size, int) or not 0 <= proj_size < hidden_size:
            raise ConfigError(f"LSTMCell: proj_size must be an int in [0, hidden_size="
                              f"{hidden_size}), got {proj_size!r}; use 0 for no projection")
        self.input_size, self.hidden_size, self.proj_size = input_size, hidden_size, proj_size
        self.peephole, self.layer_norm = peephole, layer_norm
        real = proj_size or hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, real))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size)) if proj_size else None
        self.weight_ch = nn.Parameter(torch.empty(3, hidden_size)) if peephole else None
        if layer_norm:
            self.norm_ih = nn.LayerNorm(4 * hidden_size, bias=False)
            self.norm_hh = nn.LayerNorm(4 * hidden_size, bias=False)
            self.norm_c = nn.LayerNorm(hidden_size)
        self.reset_parameters()

    @property
    def state_size(self) -> int:
        """Features of h_t."""
        return self.proj_size or self.hidden_size

    @property
    def plain(self) -> bool:
        """True when the cell is the plain ``torch.nn.LSTM`` one (no peephole, no norm)."""
        return not (self.peephole or self.layer_norm)

    def reset_parameters(self) -> None:
        uniform_(self, self.hidden_size)
        if self.layer_norm:
            for norm in (self.norm_ih, self.norm_hh, self.norm_c):
                norm.reset_parameters()

    def project_input(self, x: Tensor) -> Tensor:
        """W_ih x (+ b_ih) for any leading shape: (..., I) → (..., 4H)."""
        if self.layer_norm:
            gx = self.norm_ih(F.linear(x, self.weight_ih))
            return gx if self.bias_ih is None else gx + self.bias_ih
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step(self, gx: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One step given ``gx = project_input(x_t)`` (B, 4H) and (h_{t−1}, c_{t−1})."""
        h, c = state
        if self.layer_norm:
            gh = self.norm_hh(F.linear(h, self.weight_hh))
            gh = gh if self.bias_hh is None else gh + self.bias_hh
        else:
            gh = F.linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = (gx + gh).chunk(4, -1)
        if self.weight_ch is not None:
            w_ci, w_cf, w_co = self.weight_ch
            i, f = i + w_ci * c, f + w_cf * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.weight_ch is not None:
            o = o + w_co * c
        m = torch.sigmoid(o) * torch.tanh(self.norm_c(c) if self.layer_norm else c)
        h = m if self.weight_hr is None else F.linear(m, self.weight_hr)
        return h, c

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, Tensor]:
        """x (B, I) or (I,); state (h (B, P), c (B, H)), zeros when omitted → (h', c')."""
        if state is None:
            lead = x.shape[:-1]
            state = (x.new_zeros(*lead, self.state_size), x.new_zeros(*lead, self.hidden_size))
        return self.step(self.project_input(x), state)

    def extra_repr(self) -> str:
        extra = f", proj_size={self.proj_size}" if self.proj_size else ""
        extra += ", peephole=True" if self.peephole else ""
        extra += ", layer_norm=True" if self.layer_norm else ""
        return f"{self.input_size}, {self.hidden_size}{extra}"
