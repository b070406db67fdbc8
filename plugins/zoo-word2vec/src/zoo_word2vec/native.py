"""Build and load ``kernel.c``, the C twin of the numba loop, through ctypes.

The first use compiles it with the system C compiler (``$CC``, else Python's own, else
``cc``) into ``__pycache__`` beside this file (or ``~/.cache/zoo-word2vec`` where that is
read-only), named by a hash of the source, the flags and the machine, so a later process
only loads it (a millisecond; numba's cached kernel costs its import and registry set-up,
about 0.4 s, in every fresh process). Without a working compiler :func:`kernel` returns
``None`` and the trainer uses numba. ``ZOO_WORD2VEC_NATIVE=0`` turns the C kernel off.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shlex
import subprocess
import sysconfig
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernel.c")
# -O3 vectorises the dot products; the reassociation that needs is allowed explicitly
# (not -ffast-math, whose start-up file would flush subnormals for the whole process).
FLAGS = ["-O3", "-shared", "-fPIC", "-fno-math-errno", "-fno-trapping-math",
         "-fno-signed-zeros", "-fassociative-math", "-ffp-contract=fast"]
_I64, _I32 = ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int32)
_F32, _F64 = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_double)
ARGTYPES = [_F32, _F32, _F32, ctypes.c_int64,              # syn0, syn1neg, syn1, dim
            _I64, _I64, _I64, ctypes.c_int64,              # ids, sid, windows, n
            ctypes.c_double, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
            _I64, _I32, ctypes.c_int64,                    # noise_cut, noise_alias, size
            _I64, _I64, _I64, ctypes.c_int64,              # points, codes, lengths, stride
            _F32, _F64, ctypes.c_int64,                    # sigmoid, −log σ, table size
            ctypes.c_uint64, _F32, _I64]                   # seed, work, predictions out
_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def _march() -> list[str]:
    """Tune for this CPU where the cache key can tell CPUs apart (Linux: its flags)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return []
    if not flags:
        return []
    # 512-bit vectors leave a long scalar tail on 100-dimensional rows
    x86 = ["-mprefer-vector-width=256"] if platform.machine() in ("x86_64", "AMD64") else []
    return ["-march=native", *x86, "#" + hashlib.sha256(flags.encode()).hexdigest()[:12]]


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def _library_path(cc: list[str], flags: list[str]) -> Path:
    key = hashlib.sha256(SOURCE.read_bytes())
    key.update(repr((cc, flags, platform.machine(), platform.system())).encode())
    name = f"kernel-{key.hexdigest()[:16]}{sysconfig.get_config_var('SHLIB_SUFFIX') or '.so'}"
    for folder in (SOURCE.parent / "__pycache__",
                   Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                   / "zoo-word2vec"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK) or (folder / name).exists():
                return folder / name
        except OSError:
            continue
    raise OSError("no writable folder for the compiled word2vec kernel")


def _build(cc: list[str], flags: list[str], out: Path) -> None:
    """Compile into a temporary file, then move it in place (other processes may race)."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.stem + ".", suffix=".tmp")
    os.close(fd)
    try:
        subprocess.run([*cc, *flags, str(SOURCE), "-o", tmp, "-lm"], check=True,
                       capture_output=True, timeout=120)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def kernel() -> Any | None:
    """The C ``w2v_train_chunk`` as a ctypes function, or ``None`` where it cannot be built."""
    with _lock:
        if "fn" in _loaded:
            return _loaded["fn"]
        _loaded["fn"] = None
        if os.environ.get("ZOO_WORD2VEC_NATIVE", "1") == "0":
            return None
        fn, cc, march = None, _compiler(), _march()
        for flags, key in ((FLAGS + march[:-1], FLAGS + march), (FLAGS, FLAGS)):
            try:  # tuned for this CPU first, then for its architecture's baseline
                path = _library_path(cc, key)
                if not path.exists():
                    _build(cc, flags, path)
                fn = ctypes.CDLL(str(path)).w2v_train_chunk
                break
            except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError) as e:
                log.debug("word2vec C kernel not built with %s (%s)", flags, e)
        if fn is None:
            return None
        fn.argtypes, fn.restype = ARGTYPES, ctypes.c_double
        _loaded["fn"] = fn
        return fn
