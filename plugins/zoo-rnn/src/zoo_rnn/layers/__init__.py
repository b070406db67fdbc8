"""Building blocks of zoo-rnn, one concept per file."""

from .bahdanau import AdditiveAttention
from .gru_cell import GRUCell
from .lstm_cell import LSTMCell
from .rnn_cell import RNNCell

__all__ = ["AdditiveAttention", "GRUCell", "LSTMCell", "RNNCell"]
