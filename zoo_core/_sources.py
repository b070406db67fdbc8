"""Where an entry's files come from: ``hf:`` (the Hub, through huggingface_hub), ``dir:`` (a
local folder) and ``pkg:`` (a file inside an installed distribution).

The store copies what :func:`locate` finds and checks the copy; this module only finds files,
says what the Hub vouched for (:func:`hub_attests`) and tidies the Hub cache of what zoo's
own downloads left behind (:func:`clean_incomplete`, :func:`discard`). Every path it removes
is resolved first and must lie inside the Hub cache; a link is removed, never followed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import re
import shutil
import stat
import time
from pathlib import Path

from ._catalog import Source, check_file_name

_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
INCOMPLETE_AGE_S = 30  # an .incomplete download untouched this long, its lock free, is dead


def locate(source: Source, fname: str) -> Path:
    """A local path holding ``fname`` from ``source`` (downloading for ``hf:``)."""
    check_file_name(fname)
    if source.scheme == "hf":
        from ._hubnet import hf_hub_download  # fails fast when the endpoint is unreachable

        try:
            return Path(hf_hub_download(source.location, fname, revision=source.revision))
        finally:
            clean_incomplete(source.location)
    if source.scheme == "dir":
        path = Path(source.location) / fname
        if not path.is_file():
            raise FileNotFoundError(f"no file {str(path)!r}")
        return path
    dist_name, _, rel = source.location.partition("/")
    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError:
        raise FileNotFoundError(
            f"distribution {dist_name!r} is not installed (pip install {dist_name})"
        ) from None
    path = Path(str(dist.locate_file(Path(rel) / fname)))
    if not path.is_file():
        raise FileNotFoundError(f"{dist_name} {dist.version} has no file {rel}/{fname}")
    return path


def copy_file(src: Path, dst: Path) -> None:
    """Copy bytes, as a reflink where the file system offers one (never a hard link)."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        try:
            import fcntl

            fcntl.ioctl(fo.fileno(), 0x40049409, fi.fileno())  # FICLONE
            return
        except (ImportError, OSError):
            pass
        shutil.copyfileobj(fi, fo, 1 << 22)


def hub_etag(source: Source, path: Path) -> str:
    """The ETag the Hub sent for a downloaded file (the name of its Hub cache blob), else ''."""
    if source.scheme != "hf":
        return ""
    return Path(os.path.realpath(path)).name


def hub_attests(etag: str, copy: Path, sha256: str) -> bool | None:
    """Whether the Hub's ETag vouches for the bytes of ``copy`` (whose sha256 is given):
    an LFS file's ETag is its sha256, a regular file's its git blob sha1. ``None`` when the
    ETag is neither, so it vouches for nothing."""
    if _SHA256.fullmatch(etag):
        return etag == sha256
    if _GIT_SHA1.fullmatch(etag):
        h = hashlib.sha1(f"blob {os.path.getsize(copy)}\0".encode())  # noqa: S324 - git's hash
        with open(copy, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        return h.hexdigest() == etag
    return None


def refusal(scheme: str, etag: str, copy: Path, actual: str, expected: str) -> str:
    """Why the downloaded ``copy`` (sha256 ``actual``) is refused, or '' if it is not."""
    if expected and actual != expected:
        return f"expected {expected}"
    if scheme != "hf":
        return ""
    vouched = hub_attests(etag, copy, actual)
    if vouched is False:
        return f"the Hub's ETag says {etag}"
    if vouched is None and not expected:
        return (f"and the Hub's ETag {etag[:80]!r} is neither its sha256 nor its git hash, so "
                "a first download cannot be checked; pin the file's sha256 in a catalogue entry "
                "(ZOO_CATALOG) to use it")
    return ""


def _hub_cache() -> str:
    import huggingface_hub.constants as hc

    return os.path.realpath(hc.HF_HUB_CACHE)


def _repo_blobs(repo_id: str) -> Path | None:
    """The Hub cache's blobs folder of ``repo_id`` when it is a real folder where it should
    be (no link on the way), else None."""
    hub = _hub_cache()
    blobs = Path(hub) / ("models--" + repo_id.replace("/", "--")) / "blobs"
    try:
        if not stat.S_ISDIR(os.lstat(blobs).st_mode) or os.path.realpath(blobs) != str(blobs):
            return None
    except OSError:
        return None
    return blobs


def clean_incomplete(repo_id: str) -> None:
    """Remove ``.incomplete`` downloads of ``repo_id`` that no process is writing."""
    from filelock import FileLock, Timeout

    blobs = _repo_blobs(repo_id)
    if blobs is None:
        return
    locks = Path(_hub_cache()) / ".locks" / blobs.parent.name
    for part in blobs.glob("*.incomplete"):
        etag = part.name.split(".")[0]
        try:
            st = os.lstat(part)
            if not stat.S_ISREG(st.st_mode) or time.time() - st.st_mtime <= INCOMPLETE_AGE_S:
                continue
            if os.path.realpath(locks) != str(locks):
                return
            with FileLock(str(locks / f"{etag}.lock")).acquire(timeout=0):
                os.unlink(part)
        except (Timeout, OSError):
            continue


def discard(source: Source, path: Path) -> bool:
    """Remove a bad download from the Hub cache; never delete a user's or a package's file."""
    if source.scheme != "hf":
        return False
    real = os.path.realpath(path)
    if not real.startswith(_hub_cache() + os.sep):
        return False
    Path(real).unlink(missing_ok=True)
    if path.is_symlink() and os.path.realpath(path.parent).startswith(_hub_cache() + os.sep):
        path.unlink(missing_ok=True)
    return True


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"
