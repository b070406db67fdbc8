"""Build and load ``kernel.c``, the C twin of the numba loop, through ``zoo.native``.

The first use compiles it with the system C compiler into ``__pycache__`` beside this file (or
the user cache), so a later process only loads it (a millisecond; numba's cached kernel costs
its import and registry set-up, about 0.4 s, in every fresh process). Without a working
compiler :func:`kernel` returns ``None`` and the trainer uses numba. ``ZOO_WORD2VEC_NATIVE=0``
turns the C kernel off.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import zoo_core as zoo

SOURCE = Path(__file__).with_name("kernel.c")
# -O3 vectorises the dot products; the reassociation that needs is allowed explicitly
# (not -ffast-math, whose start-up file would flush subnormals for the whole process).
FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros",
         "-fassociative-math", "-ffp-contract=fast"]
SWITCH = "ZOO_WORD2VEC_NATIVE"
_I64, _I32 = ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int32)
_F32, _F64 = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_double)
ARGTYPES = [_F32, _F32, _F32, ctypes.c_int64,              # syn0, syn1neg, syn1, dim
            _I64, _I64, _I64, ctypes.c_int64,              # ids, sid, windows, n
            ctypes.c_double, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
            _I64, _I32, ctypes.c_int64,                    # noise_cut, noise_alias, size
            _I64, _I64, _I64, ctypes.c_int64,              # points, codes, lengths, stride
            _F32, _F64, ctypes.c_int64,                    # sigmoid, −log σ, table size
            ctypes.c_uint64, _F32, _I64]                   # seed, work, predictions out


def kernel() -> Any | None:
    """The C ``w2v_train_chunk`` as a ctypes function, or ``None`` where it cannot be built."""
    lib = zoo.native.library(SOURCE, name="zoo-word2vec", flags=FLAGS, switch=SWITCH)
    if lib is None:
        return None
    fn = lib.w2v_train_chunk
    if fn.restype is not ctypes.c_double:      # the same function object on every call
        fn.argtypes, fn.restype = ARGTYPES, ctypes.c_double
    return fn
