"""Multi-layer, optionally bidirectional RNN, LSTM and GRU layers built from the cells.

Layer ℓ > 0 reads the outputs of layer ℓ − 1 (both directions concatenated), after dropout
in training (Zaremba et al. 2014, arXiv:1409.2329). Each direction of each layer applies its
cell's equation (``layers/rnn_cell.py``, ``lstm_cell.py``, ``gru_cell.py``).

The layers are drop-ins for ``torch.nn.RNN`` / ``LSTM`` / ``GRU``: the same constructor
(``LSTM(10, 20, num_layers=2, batch_first=True)``, or a config), attributes (``hidden_size``,
``mode``, ``all_weights``, ``flatten_parameters()``), state shapes, and parameters registered
under ``torch.nn``'s names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``), so
``named_parameters()`` and state dicts are ``torch.nn``'s, both ways. The same seed draws the
same initial weights as ``torch.nn``. Peephole and layer-norm LSTM parameters follow the
pattern (``weight_ch_l0``, ``norm_c_bias_l0``).

Fast path (``fused=True``, the default for the plain cells): the input projections of every
step and both directions are one matrix product, and the recurrence runs in
``layers/fused.py`` (the LSTM's: ``layers/fused_lstm.py``) with a hand-written backward whose
weight gradients are single products over all steps. With ``fused=False``, or for LSTM cells
with peepholes or layer norm, a cell steps under autograd with the layer's parameters
(``torch.func.functional_call``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence

import zoo_core as zoo

from .layers import GRUCell, LSTMCell, RNNCell
from .layers.directions import State, Weights, run_directions, step_cell
from .layers.sequence import Batch, prepare


class CallError(zoo.InputError, TypeError):
    """A constructor called with arguments that do not fit its signature: a ``TypeError``, as
    torch.nn raises, and a ``ZooError``."""


def torch_name(cell_name: str, layer: int, reverse: bool) -> str:
    """A cell's parameter name → the layer's: ``weight_ih``, 1, True → ``weight_ih_l1_reverse``
    (layer norms: ``norm_c.bias``, 0, False → ``norm_c_bias_l0``)."""
    return f"{cell_name.replace('.', '_')}_l{layer}{'_reverse' if reverse else ''}"


@dataclass(frozen=True)
class RNNConfig:
    """Arguments of ``torch.nn.RNN`` (``nonlinearity`` "tanh" or "relu"), plus ``fused``."""

    input_size: int = 16
    hidden_size: int = 32
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    fused: bool = True
    nonlinearity: str = "tanh"
    num_directions: int = field(init=False, default=1)
    output_size: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        name = type(self).__name__
        for key in ("input_size", "hidden_size", "num_layers"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise zoo.ConfigError(f"{name}: {key} must be a positive int, got {value!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout <= 1:
            raise zoo.ConfigError(f"{name}: dropout must be a probability in [0, 1], got "
                                  f"{self.dropout!r}")
        if self.nonlinearity not in ("tanh", "relu"):
            raise zoo.ConfigError(f"{name}: unknown nonlinearity {self.nonlinearity!r}; valid: "
                                  "'tanh', 'relu'")
        object.__setattr__(self, "num_directions", 2 if self.bidirectional else 1)
        object.__setattr__(self, "output_size", self.num_directions * self.state_size)

    @property
    def state_size(self) -> int:
        return self.hidden_size


@dataclass(frozen=True)
class LSTMConfig(RNNConfig):
    """Arguments of ``torch.nn.LSTM`` (``proj_size``), plus peepholes and layer norm."""

    nonlinearity: str = "tanh"
    proj_size: int = 0
    peephole: bool = False
    layer_norm: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.proj_size, int) or not 0 <= self.proj_size < self.hidden_size:
            raise zoo.ConfigError(f"LSTMConfig: proj_size must be in [0, hidden_size="
                                  f"{self.hidden_size}), got {self.proj_size!r}")
        if self.nonlinearity != "tanh":
            raise zoo.ConfigError(f"LSTMConfig: the LSTM has no nonlinearity option, got "
                                  f"{self.nonlinearity!r}; leave it at 'tanh'")
        super().__post_init__()

    @property
    def state_size(self) -> int:
        return self.proj_size or self.hidden_size


@dataclass(frozen=True)
class GRUConfig(RNNConfig):
    """Arguments of ``torch.nn.GRU``."""

    def __post_init__(self) -> None:
        if self.nonlinearity != "tanh":
            raise zoo.ConfigError(f"GRUConfig: the GRU has no nonlinearity option, got "
                                  f"{self.nonlinearity!r}; leave it at 'tanh'")
        super().__post_init__()


class _Layer(nn.Module):
    """Layer ``index`` of a recurrent module as a block ``checkpointing`` can wrap; holds no
    parameters (they are the owner's)."""

    def __init__(self, owner: _Recurrent, index: int) -> None:
        super().__init__()
        self.index = index
        object.__setattr__(self, "owner", owner)   # a back reference, not a submodule

    def forward(self, x: Tensor, states: list[State], mask: Tensor | None
                ) -> tuple[Tensor, list[State]]:
        return self.owner.run_layer(self.index, x, states, mask)


class _Steps(nn.Module):
    """A cell stepped over a whole sequence, called with a layer's parameters."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: Tensor, state: State, mask: Tensor | None, reverse: bool
                ) -> tuple[Tensor, State]:
        return step_cell(self.cell, x, state, mask, reverse)


class _Recurrent(zoo.Model):
    """Shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    Built from a config (``LSTM(LSTMConfig(...))``, ``zoo.create("model:lstm", ...)``) or
    with ``torch.nn``'s arguments, positional ones included (``LSTM(10, 20, 2)``), plus
    ``device=`` and ``dtype=``.
    """

    supports_grad_checkpointing = True
    # Our parameter names are torch.nn's, so its layout maps nothing; declared so that an
    # entry or a caller can name it (``zoo.load_state_dict(m, sd, layout="torch")``).
    layouts: ClassVar[dict[str, list[tuple[str, str]]]] = {"torch": []}
    torch_class: ClassVar[type[nn.RNNBase]]
    cell_class: ClassVar[type[nn.Module]]
    # torch.nn's positional arguments, in its order
    positional: ClassVar[tuple[str, ...]] = ("input_size", "hidden_size", "num_layers", "bias",
                                             "batch_first", "dropout", "bidirectional")

    def __init__(self, *args: Any, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, **kwargs: Any) -> None:
        if len(args) == 1 and not kwargs and isinstance(args[0], self.config_class):
            config = args[0]
        else:
            config = self.config_class(**self._arguments(args, kwargs))
        super().__init__(config)
        c = config
        # torch.nn's registration order (layer, direction, then the cell's own order), so
        # that one seed draws the same weights: [[weight_ih_l0, weight_hh_l0, ...], ...]
        self._all_weights: list[list[str]] = []
        self._cell_names: list[dict[str, str]] = []    # per layer·direction: cell → ours
        for layer in range(c.num_layers):
            for d in range(c.num_directions):
                cell = self._cell(c.input_size if layer == 0 else c.output_size)
                names = {n: torch_name(n, layer, d == 1) for n, _ in cell.named_parameters()}
                for n, p in cell.named_parameters():
                    self.register_parameter(names[n], p)
                self._cell_names.append(names)
                self._all_weights.append(list(names.values()))
        with torch.device("meta"):                     # the unfused path's cell, no storage
            object.__setattr__(self, "_steps", _Steps(self._cell(c.input_size)))
        object.__setattr__(self, "_layers", [_Layer(self, i) for i in range(c.num_layers)])
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    @classmethod
    def _arguments(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """torch.nn's (positional and keyword) arguments → config fields."""
        name = cls.__name__
        if len(args) > len(cls.positional):
            raise CallError(f"{name}() takes at most {len(cls.positional)} positional arguments "
                            f"({', '.join(cls.positional)}), got {len(args)}; pass the rest "
                            "by keyword")
        both = [k for k in cls.positional[:len(args)] if k in kwargs]
        if both:
            raise CallError(f"{name}() got multiple values for argument {both[0]!r}; give it "
                            "once, by position or by keyword")
        return {**dict(zip(cls.positional, args, strict=False)), **kwargs}

    def _cell(self, input_size: int) -> nn.Module:
        raise NotImplementedError

    # -- torch.nn's attributes -----------------------------------------------------------
    input_size = property(lambda self: self.config.input_size)
    hidden_size = property(lambda self: self.config.hidden_size)
    num_layers = property(lambda self: self.config.num_layers)
    bias = property(lambda self: self.config.bias)
    bidirectional = property(lambda self: self.config.bidirectional)
    proj_size = property(lambda self: getattr(self.config, "proj_size", 0))

    @property
    def batch_first(self) -> bool:
        return self.config.batch_first

    @batch_first.setter
    def batch_first(self, value: bool) -> None:
        self.config = dataclasses.replace(self.config, batch_first=value)

    @property
    def dropout(self) -> float:
        return float(self.config.dropout)

    @dropout.setter
    def dropout(self, value: float) -> None:
        self.config = dataclasses.replace(self.config, dropout=value)

    @property
    def mode(self) -> str:
        """``torch.nn``'s mode string: ``"LSTM"`` or ``"GRU"`` (``RNN``: ``"RNN_TANH"``...)."""
        return self.torch_class.__name__

    @property
    def _flat_weights_names(self) -> list[str]:
        return [n for names in self._all_weights for n in names]

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """The parameters per layer and direction, in ``torch.nn``'s order."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """Kept so that ``torch.nn`` code runs: there is no cuDNN weight buffer to compact."""

    def reset_parameters(self) -> None:
        """Redraw every weight from U(−1/√H, 1/√H), as ``torch.nn`` does; layer norms to 1, 0."""
        bound = 1.0 / math.sqrt(self.config.hidden_size)
        for name, p in self.named_parameters():
            if name.startswith("norm_"):
                nn.init.constant_(p, 0.0 if "_bias_" in name else 1.0)
            else:
                nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        """``torch.nn``'s: ``10, 20, num_layers=2, batch_first=True``."""
        c, defaults = self.config, self.config_class()
        text = f"{c.input_size}, {c.hidden_size}"
        for key in ("proj_size", "num_layers", "nonlinearity", "bias", "batch_first", "dropout",
                    "bidirectional", "fused", "peephole", "layer_norm"):
            if hasattr(c, key) and getattr(c, key) != getattr(defaults, key):
                text += f", {key}={getattr(c, key)!r}"
        return text

    # -- forward -------------------------------------------------------------------------
    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return list(self._layers)

    def _weights(self, index: int) -> Weights:
        """Layer·direction ``index``'s parameters under the cell's names."""
        return {n: getattr(self, ours) for n, ours in self._cell_names[index].items()}

    def run_layer(self, layer: int, x: Tensor, states: list[State], mask: Tensor | None
                  ) -> tuple[Tensor, list[State]]:
        """Layer ``layer`` over x (T, B, I) from one state per direction → y, final states."""
        nd = self.config.num_directions
        weights = [self._weights(layer * nd + d) for d in range(nd)]

        def scan(d: int, *args: Any) -> tuple[Tensor, State]:
            named = {f"cell.{n}": t for n, t in weights[d].items()}
            return functional_call(self._steps, named, args)

        c = self.config
        return run_directions(self.cell_class, weights, x, states, mask, c.fused,
                              self._steps.cell.plain, c.nonlinearity == "relu", scan)

    def forward(self, input: Tensor | PackedSequence, hx: State | None = None,
                lengths: Tensor | Sequence[int] | None = None, enforce_sorted: bool = True
                ) -> tuple[Tensor | PackedSequence, State]:
        """Run the layers over a batch.

        Args:
            input: (T, B, I), (B, T, I) with ``batch_first``, (T, I) unbatched, or a
                ``PackedSequence``.
            hx: initial state, (L·D, B, P) (LSTM: a pair with c_0 (L·D, B, H)); zeros if None.
            lengths: true lengths (B,) of a padded batch; steps past a length are skipped.
            enforce_sorted: with ``lengths``, require them in decreasing order.

        Returns:
            The outputs of the last layer (zeros past each length; a ``PackedSequence`` for
            one), and the final state of every layer and direction at the true lengths.
        """
        cfg = self.config
        batch = prepare(input, cfg.input_size, cfg.batch_first, lengths, enforce_sorted)
        states = self._initial_states(hx, batch)
        x, finals = batch.x.contiguous(), []
        nd = cfg.num_directions
        for i, layer in enumerate(self._layers):
            if i and cfg.dropout and self.training:
                x = F.dropout(x, cfg.dropout, training=True)
            x, last = layer(x, states[i * nd:(i + 1) * nd], batch.mask)
            finals.extend(last)
        return batch.restore(x), self._stack_states(finals, batch.unbatched)

    def _initial_states(self, hx: State | None, batch: Batch) -> list[State]:
        n, c = self.config.num_layers * self.config.num_directions, self.config
        if hx is None:
            return [batch.x.new_zeros(batch.x.shape[1], c.state_size)] * n
        if isinstance(hx, tuple):
            raise zoo.InputError(f"{type(self).__name__} takes one state tensor h_0, got a tuple "
                                 f"of {len(hx)}; (h_0, c_0) pairs are for the LSTM")
        return list(self._check_state("h_0", hx, batch, c.state_size).unbind(0))

    def _stack_states(self, finals: list[State], unbatched: bool) -> State:
        h = torch.stack(finals)                          # (L·D, B, H)
        return h[:, 0] if unbatched else h

    def _check_state(self, name: str, t: Any, batch: Batch, size: int) -> Tensor:
        cfg = self.config
        n, b = cfg.num_layers * cfg.num_directions, batch.x.shape[1]
        want = (n, size) if batch.unbatched else (n, b, size)
        if not isinstance(t, Tensor) or tuple(t.shape) != want:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise zoo.InputError(f"{name} has shape {got!r}, expected {want} = (num_layers · "
                                 f"num_directions{'' if batch.unbatched else ', batch'}, {size})")
        return t.unsqueeze(1) if batch.unbatched else t  # caller's batch order, also if packed

    def example_inputs(self) -> dict[str, Any]:
        cfg = self.config
        x = torch.randn(3, 5, cfg.input_size) if cfg.batch_first else \
            torch.randn(5, 3, cfg.input_size)
        return {"input": x, "lengths": torch.tensor([5, 4, 2])}

    def bad_inputs(self) -> list[dict[str, Any]]:
        good = self.example_inputs()
        x = good["input"]
        return [{**good, "input": x[..., :-1]},                 # one feature short per step
                {**good, "input": x[None]},                     # 4-D input
                {**good, "lengths": torch.tensor([5, 4])},      # one length short
                {"input": x, "hx": torch.zeros(1, 1, 1)}]       # h_0 of the wrong shape

    # -- torch.nn interop ------------------------------------------------------------------
    def torch_kwargs(self) -> dict[str, Any]:
        """The constructor arguments of the equivalent ``torch.nn`` module."""
        kwargs = {k: getattr(self.config, k) for k in self.positional}
        return {**kwargs, "dropout": float(kwargs["dropout"])}

    def torch_state_dict(self) -> dict[str, Tensor]:
        """The state dict, checked to have a ``torch.nn`` counterpart (plain cells only)."""
        odd = [k for k in self.state_dict() if k.startswith(("weight_ch", "norm_"))]
        if odd:
            raise zoo.InputError(f"{odd[0]!r} has no torch.nn counterpart (peephole or "
                                 "layer-norm LSTM); only plain cells convert to torch.nn")
        return self.state_dict()

    def to_torch(self) -> nn.RNNBase:
        """An equivalent ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` holding copies of the weights."""
        module = self.torch_class(**self.torch_kwargs())
        param = next(self.parameters())
        module.to(device=param.device, dtype=param.dtype)
        module.load_state_dict(self.torch_state_dict())
        return module

    @classmethod
    def from_torch(cls, module: nn.RNNBase, **overrides: Any) -> _Recurrent:
        """A layer with the configuration and weights of a ``torch.nn`` RNN module."""
        if not isinstance(module, cls.torch_class):
            raise zoo.InputError(f"{cls.__name__}.from_torch takes a torch.nn."
                                 f"{cls.torch_class.__name__}, got {type(module).__name__}")
        kwargs = {k: getattr(module, k) for k in cls.positional}
        param = next(module.parameters())
        model = cls(**kwargs, **overrides, device=param.device, dtype=param.dtype)
        model.load_torch_state_dict(module.state_dict())
        return model

    def load_torch_state_dict(self, state: dict[str, Tensor]) -> None:
        """Strictly load a ``torch.nn`` state dict (``load_state_dict`` does the same)."""
        zoo.load_state_dict(self, dict(state), layout="torch")


class RNN(_Recurrent):
    """Elman RNN layers, ``torch.nn.RNN``-compatible.

    Example:
        >>> rnn = zoo.create("model:rnn", input_size=8, hidden_size=16, num_layers=2)
        >>> y, h_n = rnn(torch.randn(10, 4, 8))          # (T, B, H), (L, B, H)
    """

    config_class = RNNConfig
    presets: ClassVar[dict[str, RNNConfig]] = {
        "tiny": RNNConfig(input_size=6, hidden_size=8, num_layers=2, bidirectional=True)}
    torch_class = nn.RNN
    cell_class = RNNCell
    positional = ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias",
                  "batch_first", "dropout", "bidirectional")

    nonlinearity = property(lambda self: self.config.nonlinearity)

    @property
    def mode(self) -> str:
        return f"RNN_{self.config.nonlinearity.upper()}"

    def _cell(self, input_size: int) -> nn.Module:
        c = self.config
        return RNNCell(input_size, c.hidden_size, c.bias, c.nonlinearity)


class GRU(_Recurrent):
    """GRU layers, ``torch.nn.GRU``-compatible (Cho et al. 2014, arXiv:1406.1078)."""

    config_class = GRUConfig
    presets: ClassVar[dict[str, GRUConfig]] = {
        "tiny": GRUConfig(input_size=6, hidden_size=8, num_layers=2, bidirectional=True)}
    torch_class = nn.GRU
    cell_class = GRUCell

    def _cell(self, input_size: int) -> nn.Module:
        return GRUCell(input_size, self.config.hidden_size, self.config.bias)


class LSTM(_Recurrent):
    """LSTM layers, ``torch.nn.LSTM``-compatible (with ``proj_size``), plus peepholes and
    layer norm (Hochreiter & Schmidhuber 1997; Sak et al. 2014; Ba et al. 2016).

    Example:
        >>> lstm = zoo.create("model:lstm", input_size=8, hidden_size=16, bidirectional=True)
        >>> y, (h_n, c_n) = lstm(torch.randn(10, 4, 8))  # (T, B, 2H), (2, B, H) each
    """

    config_class = LSTMConfig
    presets: ClassVar[dict[str, LSTMConfig]] = {
        "tiny": LSTMConfig(input_size=6, hidden_size=8, num_layers=2, bidirectional=True,
                           proj_size=5)}
    torch_class = nn.LSTM
    cell_class = LSTMCell
    positional = (*_Recurrent.positional, "proj_size")

    def _cell(self, input_size: int) -> nn.Module:
        c = self.config
        return LSTMCell(input_size, c.hidden_size, c.bias, c.proj_size, c.peephole,
                        c.layer_norm)


    def _initial_states(self, hx: State | None, batch: Batch) -> list[State]:
        c = self.config
        n, b = c.num_layers * c.num_directions, batch.x.shape[1]
        if hx is None:
            zeros = (batch.x.new_zeros(b, c.state_size), batch.x.new_zeros(b, c.hidden_size))
            return [zeros] * n
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise zoo.InputError(f"LSTM takes hx = (h_0, c_0), got a {type(hx).__name__}; pass a "
                                 "pair of tensors")
        h = self._check_state("h_0", hx[0], batch, c.state_size)
        cc = self._check_state("c_0", hx[1], batch, c.hidden_size)
        return list(zip(h.unbind(0), cc.unbind(0), strict=True))

    def _stack_states(self, finals: list[State], unbatched: bool) -> State:
        h = torch.stack([f[0] for f in finals])          # (L·D, B, P)
        c = torch.stack([f[1] for f in finals])          # (L·D, B, H)
        return (h[:, 0], c[:, 0]) if unbatched else (h, c)

