"""C kernels built at first use and loaded through ctypes: ``zoo.native``.

A plugin ships a C file beside its Python code and asks for it as a library::

    import zoo_core as zoo

    lib = zoo.native.library(Path(__file__).with_name("kernel.c"), name="zoo-word2vec",
                             flags=["-O3"], switch="ZOO_WORD2VEC_NATIVE")
    if lib is not None:                      # None: no working compiler, or switched off
        fn = lib.w2v_train_chunk
        fn.argtypes, fn.restype = [...], ctypes.c_double

The first call compiles the file with the system C compiler (``$CC``, else the one Python was
built with, else ``cc``) into ``__pycache__`` beside it, or ``~/.cache/<name>`` where that is
read-only. The library is named by a hash of the source, the compiler, the flags and the
machine, so a later process only loads it (about a millisecond), and an edited source or
another CPU gets its own. It is compiled into a temporary file and renamed into place, so
processes that race to build it never load a half-written one. The build is tried tuned for
this CPU (``-march=native``, keyed by the CPU's feature flags) first, then for the
architecture's baseline; where both fail, :func:`library` logs why at debug level and returns
``None``, and the caller keeps its pure-Python or torch path. ``switch`` names an environment
variable that turns the library off when set to ``0``.

Never pass ``-ffast-math``: its start-up file flushes subnormals to zero for the whole
process. Ask for the single licences it implies instead (``-fno-math-errno``, ...).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shlex
import sysconfig
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from ._files import atomic_path

log = logging.getLogger(__name__)

#: always passed: a shared library with position-independent code
LIBRARY_FLAGS = ("-shared", "-fPIC")
_lock = threading.Lock()
_loaded: dict[tuple[str, ...], ctypes.CDLL | None] = {}


def compiler() -> list[str]:
    """The C compiler's command: ``$CC``, else the one Python was built with, else ``cc``."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


@cache
def _cpuinfo(field: str) -> str:
    """The first line of /proc/cpuinfo (Linux) that starts with ``field``, else empty: read
    once per field and process."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return next((line for line in f if line.startswith(field)), "")
    except OSError:
        return ""


def _cpu_flags() -> str:
    """The feature-flags line of /proc/cpuinfo, else empty."""
    return _cpuinfo("flags")


def cpu_vendor() -> str:
    """The CPU's vendor as /proc/cpuinfo names it (``"GenuineIntel"``, ``"AuthenticAMD"``),
    else empty: for a plugin that picks a library by the CPU it runs on."""
    return _cpuinfo("vendor_id").partition(":")[2].strip()


def march() -> list[str]:
    """Flags that tune for this CPU, where the cache key can tell CPUs apart (Linux: by the
    feature flags in /proc/cpuinfo); empty elsewhere. On x86, 256-bit vectors are preferred
    (512-bit ones lower the clock on some CPUs and leave long scalar tails on short rows)."""
    if not _cpu_flags():
        return []
    x86 = ["-mprefer-vector-width=256"] if platform.machine() in ("x86_64", "AMD64") else []
    return ["-march=native", *x86]


def _library_path(source: Path, cc: list[str], flags: list[str], name: str) -> Path:
    key = hashlib.sha256(source.read_bytes())
    tuned = "-march=native" in flags
    key.update(repr((cc, flags, platform.machine(), platform.system(),
                     _cpu_flags() if tuned else "")).encode())
    suffix = sysconfig.get_config_var("SHLIB_SUFFIX") or ".so"
    file = f"{source.stem}-{key.hexdigest()[:16]}{suffix}"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / name
    for folder in (source.parent / "__pycache__", cache):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK) or (folder / file).exists():
                return folder / file
        except OSError:
            continue
    raise OSError(f"no writable folder for the compiled {source.name} ({name})")


def _build(source: Path, cc: list[str], flags: list[str], out: Path) -> None:
    """Compile into a temporary file beside ``out``, then rename it into place."""
    import subprocess  # only a build needs it: zoo_core's import stays without it

    with atomic_path(out, 0o755) as tmp:
        subprocess.run([*cc, *flags, *LIBRARY_FLAGS, str(source), "-o", str(tmp), "-lm"],
                       check=True, capture_output=True, timeout=120)


def library(source: str | os.PathLike[str], *, name: str, flags: Sequence[str] = ("-O3",),
            switch: str | None = None, tune: bool = True) -> ctypes.CDLL | None:
    """The C file ``source`` compiled into a shared library and loaded, or ``None``.

    Args:
        source: the C file (its folder's ``__pycache__`` holds the library when writable).
        name: who asks (a distribution name, ``"zoo-rnn"``): the user cache folder's name and
            the logger's wording.
        flags: compiler flags (optimisation and maths licences; see the module docstring).
        switch: an environment variable; set to ``0`` it turns the library off (``None``).
        tune: try :func:`march`'s flags for this CPU first.

    Returns:
        The loaded ``ctypes.CDLL`` (the same object on every call in a process), or ``None``
        when it is switched off or no compiler could build it (the reason is logged at debug
        level). Set ``argtypes`` and ``restype`` on its functions once, after loading.
    """
    if switch is not None and os.environ.get(switch, "1") == "0":
        return None
    import subprocess

    src, cc = Path(source), compiler()
    memo = (str(src), *cc, "|", *flags, "|", str(tune))
    with _lock:
        if memo in _loaded:
            return _loaded[memo]
        lib, tuned = None, march() if tune else []
        for extra in ([tuned, []] if tuned else [[]]):
            try:  # tuned for this CPU first, then for its architecture's baseline
                path = _library_path(src, cc, [*flags, *extra], name)
                if not path.exists():
                    _build(src, cc, [*flags, *extra], path)
                lib = ctypes.CDLL(str(path))
                break
            except (OSError, subprocess.SubprocessError) as e:
                detail = getattr(e, "stderr", b"") or b""
                log.debug("%s: %s not built with %s (%s) %s", name, src.name,
                          [*flags, *extra], e, detail.decode(errors="replace")[-2000:])
        _loaded[memo] = lib
        return lib
