"""Derived files: a transform of a verified file, computed once and kept in the store.

A foreign checkpoint often needs work on every load before a model can hold it (keys
renamed, the three attention projections stacked into one matrix). ``derived`` does that
work once per source file and transform, writes the result as a safetensors file in the
store, and hands back its path on every later call::

    derived/<source sha256>/<transform>.safetensors   the result, read-only (0444)
    derived/<source sha256>/<transform>.json          its sha256 and stat when written

The key is the source's digest (so it follows the bytes, not a file name) and the
transform's name, which must carry its version (``"model:bert/hf-bert@zoo-transformer
0.1.0"``): a new version is a new file. A source read in place and never hashed (a ``dir:``
folder) is keyed by the sha256 of its path instead, and its ``version`` (size, mtime, ctime
and inode of each file) is recorded: a file derived from another version is rebuilt.

On reuse the file's stat is compared with the recorded one and, on any change, the file is
hashed again; a file whose bytes no longer match its recorded digest (or with no record) is
rebuilt. As in the store, the bytes are written to a temporary file and renamed into place,
so a reader never sees half a file; one process at a time builds (a lock per file), and the
record names the stat of its own file only (the inode it wrote).

    >>> import zoo_core as zoo
    >>> path = zoo.derived(digest, "model:bert/hf-bert@1", lambda: fused_state_dict)
    >>> state = zoo.read_safetensors(path)
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import ZooError
from ._files import atomic_path, atomic_write, sha256_file
from ._storage import STORE

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")
log = logging.getLogger("zoo")


def _stat_key(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"


def _file_name(name: str) -> str:
    """A one-to-one file name for a transform name: unsafe characters as ``%XX``."""
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ZooError(f"derived-file transform name {name!r} must be a non-empty str of at "
                       "most 200 characters, e.g. 'model:bert/hf-bert@1'")
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()),
                       name.replace("%", "%25"))


def derived_path(source_digest: str, name: str) -> Path:
    """Where ``derived(source_digest, name, …)`` keeps its file (it may not exist yet)."""
    if not isinstance(source_digest, str) or not _SHA256.match(source_digest):
        raise ZooError(f"source_digest={source_digest!r} is not a 64-hex sha256 digest; pass "
                       "the verified digest of the file the tensors are derived from")
    folder = STORE.root / "derived" / source_digest
    path = folder / f"{_file_name(name)}.safetensors"
    real, root = os.path.realpath(path.parent), os.path.realpath(STORE.root)
    if not real.startswith(root + os.sep):
        raise ZooError(f"{str(path)!r} resolves to {real!r}, outside the zoo store {root!r}")
    return path


def _valid(path: Path, record: Path, version: str) -> bool:
    """True if ``path`` holds the bytes its record names (stat compared, re-hashed on change),
    derived from this ``version`` of the source."""
    try:
        st = os.lstat(path)
        doc = json.loads(record.read_text("utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    if not stat.S_ISREG(st.st_mode) or not isinstance(doc, dict) \
            or doc.get("version", "") != version:
        return False
    if doc.get("stat") == _stat_key(st):
        return True
    actual = sha256_file(path)
    if actual != doc.get("sha256"):
        log.warning("zoo: derived file %s changed (sha256 %s, recorded %s); rebuilding it",
                    path, actual, doc.get("sha256"))
        return False
    atomic_write(record, json.dumps({**doc, "stat": _stat_key(st)}, indent=1) + "\n")
    return True


def derived(source_digest: str, name: str, build: Callable[[], dict[str, Any]],
            version: str = "") -> Path:
    """The safetensors file of ``build()``'s tensors for this source and transform.

    Args:
        source_digest: sha256 of the (verified) file the tensors are derived from, or of
            the path of a source read in place (then pass ``version``).
        name: the transform and its version; a new name is a new file.
        build: returns ``{key: tensor}``; called only when no valid file exists.
        version: what tells versions of the source apart when ``source_digest`` does not
            (its files' stat); a file recorded for another version is rebuilt.

    Returns:
        The path of the read-only file inside the store's ``derived/`` folder.
    """
    path = derived_path(source_digest, name)
    record = path.with_suffix(".json")
    if _valid(path, record, version):
        return path
    STORE._folder("derived", source_digest)  # each level checked: a real folder, no link
    with STORE._lock(f"derived-{source_digest}.lock"):
        if _valid(path, record, version):  # another process built it meanwhile
            return path
        from ._weights import save_safetensors

        tensors = build()
        with atomic_path(path, mode=0o444) as tmp:
            save_safetensors(tensors, tmp, {"zoo_derived_from": source_digest,
                                            "zoo_transform": name})
            digest, inode = sha256_file(tmp), os.lstat(tmp).st_ino
        st = os.lstat(path)
        atomic_write(record, json.dumps({
            "source": source_digest, "version": version, "transform": name, "sha256": digest,
            "stat": _stat_key(st) if st.st_ino == inode else ""}, indent=1) + "\n")
    return path


def _scan_file(source_key: str) -> Path:
    return STORE._folder("derived", derived_path(source_key, "x").parent.name) / "nonfinite.json"


def recorded_scan(source_key: str, version: str) -> list[str] | None:
    """The NaN/Inf tensors recorded for this version of a source read in place (keyed like
    ``derived``), or None when that version was not scanned."""
    try:
        doc = json.loads(_scan_file(source_key).read_text("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    bad = doc.get("nonfinite") if isinstance(doc, dict) and doc.get("version") == version \
        else None
    return bad if isinstance(bad, list) and all(isinstance(k, str) for k in bad) else None


def record_scan(source_key: str, version: str, nonfinite: list[str]) -> None:
    atomic_write(_scan_file(source_key), json.dumps({"version": version,
                                                     "nonfinite": nonfinite}) + "\n")
