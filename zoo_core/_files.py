"""Files written by zoo: atomically (temporary file + rename) and shareable (mode from the umask).

    >>> import zoo_core as zoo
    >>> zoo.atomic_write("vocab.txt", "[PAD]\\n[UNK]\\n")
    >>> with zoo.atomic_path("model.onnx") as tmp:   # any writer that takes a path
    ...     export(model, tmp)

A reader never sees a half-written file, a failed write leaves the old file as it was, and the
new file's mode is what ``open()`` would have given it (``0o666 & ~umask``), not ``mkstemp``'s
private 0600.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def atomic_path(final: str | os.PathLike[str], mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only on success.

    Args:
        final: the file to create or replace (its folder is created).
        mode: the new file's permission bits; default ``0o666 & ~umask``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, (0o666 & ~_umask()) if mode is None else mode)
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], data: str | bytes,
                 encoding: str = "utf-8") -> Path:
    """Write ``data`` (text or bytes) to ``path`` atomically; return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding)
        else:
            tmp.write_bytes(data)
    return path
