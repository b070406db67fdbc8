"""One recurrent layer, every direction: the fused recurrences for plain cells, the cells'
own steps otherwise.

The reverse direction reads each sequence from its last real step back to the first. A masked
step (past a sequence's length) keeps the state and outputs zeros, so final states are those
at each true length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fused import elman_recurrence, gru_recurrence
from .fused_lstm import lstm_layer
from .gru_cell import GRUCell
from .lstm_cell import LSTMCell

State = Tensor | tuple[Tensor, Tensor]
Weights = dict[str, Tensor]   # a cell's parameter name ("weight_ih", "norm_c.bias") → tensor
# scan(direction, x, state, mask, reverse) → (y, final state): the unfused path
Scan = Callable[[int, Tensor, State, Tensor | None, bool], tuple[Tensor, State]]


def run_directions(cell_class: type[nn.Module], weights: Sequence[Weights], x: Tensor,
                   states: Sequence[State], mask: Tensor | None, fused: bool, plain: bool,
                   relu: bool, scan: Scan) -> tuple[Tensor, list[State]]:
    """x (T, B, I), one initial state per direction → y (T, B, D·P), the final states.

    ``fused`` and ``plain`` cells take the recurrences of ``fused.py`` (the input projections
    of every step and direction in one product); otherwise ``scan`` steps a cell.
    """
    outs: list[Tensor] = []
    finals: list[State] = []
    if fused and plain and cell_class is LSTMCell:   # projection inside the recurrence
        for d, (w, (h0, c0)) in enumerate(zip(weights, states, strict=True)):
            y, h, c = lstm_layer(x, w["weight_ih"], w.get("bias_ih"), h0, c0, w["weight_hh"],
                                 w.get("bias_hh"), w.get("weight_hr"), mask, d == 1)
            outs.append(y)
            finals.append((h, c))
    elif fused and plain:
        bias = None if "bias_ih" not in weights[0] else torch.cat([w["bias_ih"] for w in weights])
        gxs = F.linear(x, torch.cat([w["weight_ih"] for w in weights]), bias
                       ).chunk(len(weights), -1)       # (T, B, G) each
        for d, (w, gx, state) in enumerate(zip(weights, gxs, states, strict=True)):
            args = (gx.contiguous(), state, w["weight_hh"], w.get("bias_hh"), mask, d == 1)
            y, h = gru_recurrence(*args) if cell_class is GRUCell \
                else elman_recurrence(*args, relu=relu)
            outs.append(y)
            finals.append(h)
    else:
        for d, state in enumerate(states):
            y, final = scan(d, x, state, mask, d == 1)
            outs.append(y)
            finals.append(final)
    return (outs[0] if len(outs) == 1 else torch.cat(outs, -1)), finals


def step_cell(cell: Any, x: Tensor, state: State, mask: Tensor | None, reverse: bool
              ) -> tuple[Tensor, State]:
    """Run ``cell`` step by step under autograd: x (T, B, I) → y (T, B, P), final state."""
    gx = cell.project_input(x)
    steps = range(gx.shape[0] - 1, -1, -1) if reverse else range(gx.shape[0])
    ys: list[Tensor] = [gx] * gx.shape[0]
    for t in steps:
        new = cell.step(gx[t], state)
        h_new = new[0] if isinstance(new, tuple) else new
        if mask is not None:
            keep = mask[t]
            state = (tuple(torch.where(keep, n, o) for n, o in zip(new, state, strict=True))
                     if isinstance(new, tuple) else torch.where(keep, new, state))
            h_new = h_new * keep
        else:
            state = new
        ys[t] = h_new
    return torch.stack(ys), state


class RecurrentLayer(nn.ModuleList):
    """One layer made of a cell per direction: ``layer(x, states, mask)`` runs the sequence."""

    def __init__(self, cells: Sequence[nn.Module], fused: bool) -> None:
        super().__init__(cells)
        self.fused = fused

    def forward(self, x: Tensor, states: list[State], mask: Tensor | None
                ) -> tuple[Tensor, list[State]]:
        """x (T, B, I); one initial state per direction → y (T, B, D·P), final states."""
        cells: list[Any] = list(self)
        weights = [dict(c.named_parameters()) for c in cells]
        return run_directions(type(cells[0]), weights, x, states, mask, self.fused,
                              all(c.plain for c in cells),
                              getattr(cells[0], "nonlinearity", "tanh") == "relu",
                              lambda d, *args: step_cell(cells[d], *args))
