"""The LSTM's per-step gate arithmetic in C (``lstm_gates.c``), built at first use by
``zoo.native`` and called through ctypes with tensor data pointers.

One call per layer-step replaces about twenty small ATen operations (each a dispatch, an
allocation or a pass over (B, H) floats). Without a working C compiler, for other dtypes or
devices, or with ``ZOO_RNN_NATIVE=0``, :func:`gates` returns ``None`` and ``fused_lstm.py``
keeps its torch path.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch
from torch import Tensor

import zoo_core as zoo

SOURCE = Path(__file__).with_name("lstm_gates.c")
SWITCH = "ZOO_RNN_NATIVE"
# no -ffast-math (its start-up file flushes subnormals for the whole process), and no
# -fassociative-math (it would fold exp's rounding trick (x + 1.5·2²³) − 1.5·2²³ away)
FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast"]
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
_FORWARD = [_I64, _I64, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR]
_BACKWARD = [_I64, _I64, _PTR, _PTR, _PTR, _PTR, _PTR, _I64, _PTR, _PTR]


class Gates:
    """The two C functions, with their argument types set once."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.forward_step, self.backward_step = lib.lstm_forward_step, lib.lstm_backward_step
        self.forward_step.argtypes, self.forward_step.restype = _FORWARD, None
        self.backward_step.argtypes, self.backward_step.restype = _BACKWARD, None


_gates: dict[int, Gates | None] = {}


def gates(x: Tensor) -> Gates | None:
    """The C gate functions for a float32 CPU tensor ``x``, or ``None`` (torch path)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.compiler.is_compiling():
        return None
    lib = zoo.native.library(SOURCE, name="zoo-rnn", flags=FLAGS, switch=SWITCH)
    if lib is None:
        return None
    key = id(lib)
    if key not in _gates:
        _gates[key] = Gates(lib)
    return _gates[key]
