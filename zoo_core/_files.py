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
def atomic_path(final: str | os.PathLike[str], mode: int | None = None, *,
                temp_dir: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only on success.

    Args:
        final: the file to create or replace (its folder is created).
        mode: the new file's permission bits; default ``0o666 & ~umask``.
        temp_dir: where the temporary file lives instead (same file system as ``final``; its
            name then starts with the process id, so a cleaner can tell a dead writer's).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if temp_dir is None:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f"{os.getpid()}.", suffix=".tmp", dir=temp_dir)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, (0o666 & ~_umask()) if mode is None else mode)
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], data: str | bytes, encoding: str = "utf-8",
                 *, mode: int | None = None,
                 temp_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write ``data`` (text or bytes) to ``path`` atomically; return the path (``mode`` and
    ``temp_dir`` as in :func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path, mode, temp_dir=temp_dir) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding)
        else:
            tmp.write_bytes(data)
    return path
