"""The LSTM's per-step gate arithmetic in C (``lstm_gates.c``), built at first use by
``zoo.native`` and called through ctypes with tensor data pointers.

One call per layer-step replaces about twenty small ATen operations (each a dispatch, an
allocation or a pass over (B, H) floats). Without a working C compiler, for other dtypes or
devices, or with ``ZOO_RNN_NATIVE=0``, :func:`gates` returns ``None`` and ``fused_lstm.py``
keeps its torch path.

Threads. Where torch's OpenMP runtime is GNU's, loaded in this process as ``libgomp.so.1``,
the file is built with ``-fopenmp``: the dynamic loader matches that soname to the runtime
already loaded, so a step's rows are shared by torch's own threads (the ones the products
just used), and no second thread pool starts. Elsewhere (another runtime, or torch's libgomp
under a mangled name) it is built without, and each step runs on the calling thread.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from functools import cache
from pathlib import Path

import torch
from torch import Tensor

import zoo_core as zoo

SOURCE = Path(__file__).with_name("lstm_gates.c")
SWITCH = "ZOO_RNN_NATIVE"
# no -ffast-math (its start-up file flushes subnormals for the whole process), and no
# -fassociative-math (it would fold exp's rounding trick (x + 1.5·2²³) − 1.5·2²³ away)
FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast"]
OPENMP = ["-fopenmp"]
log = logging.getLogger(__name__)
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
_FORWARD = [_I64, _I64, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR]
_BACKWARD = [_I64, _I64, _PTR, _PTR, _PTR, _PTR, _PTR, _I64, _PTR, _PTR]


class Gates:
    """The two C functions, with their argument types set once."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.forward_step, self.backward_step = lib.lstm_forward_step, lib.lstm_backward_step
        self.forward_step.argtypes, self.forward_step.restype = _FORWARD, None
        self.backward_step.argtypes, self.backward_step.restype = _BACKWARD, None


_openmp: list[bool] = []      # decided once per process


def _gomp_paths() -> set[str]:
    """Files of GNU OpenMP runtimes mapped into this process."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return {line.split()[-1] for line in f if "libgomp" in line.rsplit("/", 1)[-1]}
    except OSError:
        return set()


def _shares_torch_openmp() -> bool:
    """True where a library built with -fopenmp binds to torch's own OpenMP runtime."""
    if not _openmp:
        paths = _gomp_paths() if sys.platform.startswith("linux") else set()
        _openmp.append("OpenMP" in torch.__config__.parallel_info() and len(paths) == 1
                       and os.path.basename(next(iter(paths))) == "libgomp.so.1")
    return _openmp[0]


def gates(x: Tensor) -> Gates | None:
    """The C gate functions for a float32 CPU tensor ``x``, or ``None`` (torch path)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.compiler.is_compiling():
        return None
    if os.environ.get(SWITCH, "1") == "0":
        return None
    return _kernel(tuple(zoo.native.compiler()))


@cache
def _kernel(cc: tuple[str, ...]) -> Gates | None:
    """Built and loaded once per compiler command (``zoo.native.library`` keys its memo the
    same way), so a forward step reads no /proc file after the first."""
    lib = None
    if _shares_torch_openmp():
        before = _gomp_paths()
        lib = zoo.native.library(SOURCE, name="zoo-rnn", flags=FLAGS + OPENMP, switch=SWITCH)
        if lib is not None and _gomp_paths() != before:   # not torch's after all: stay serial
            log.warning("zoo-rnn: the OpenMP LSTM kernel loaded a second OpenMP runtime (%s); "
                        "using the single-threaded one", sorted(_gomp_paths() - before))
            _openmp[0], lib = False, None
    if lib is None:
        lib = zoo.native.library(SOURCE, name="zoo-rnn", flags=FLAGS, switch=SWITCH)
    return None if lib is None else Gates(lib)
