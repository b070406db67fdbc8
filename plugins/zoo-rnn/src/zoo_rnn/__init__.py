"""zoo-rnn: RNN, LSTM and GRU from their equations; language model and attention seq2seq.

``from zoo_rnn import LSTM, GRU, RNN`` gives drop-ins for ``torch.nn.LSTM`` / ``GRU`` /
``RNN`` (imported on first use, so that ``import zoo_rnn`` stays free of torch).
"""

from __future__ import annotations

from typing import Any

__all__ = ["GRU", "LSTM", "RNN"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import recurrent

        return getattr(recurrent, name)
    raise AttributeError(f"module 'zoo_rnn' has no attribute {name!r}")
