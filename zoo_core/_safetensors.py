"""Reading safetensors headers without torch: sniffing a file's format and refusing pickles.

zoo loads weights from safetensors only (a JSON header, then raw tensor bytes). Everything
here reads at most the header, so the store can tell formats apart without importing torch.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from ._errors import WeightsError

MAX_HEADER = 100 << 20  # the safetensors reader's own limit on the JSON header
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def safetensors_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The parsed JSON header if ``path`` is a safetensors file, else None (never raises
    for content, only for an unreadable path)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return None
        (n,) = struct.unpack("<Q", head)
        size = os.fstat(f.fileno()).st_size
        if n < 2 or n > min(MAX_HEADER, size - 8):
            return None
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
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
    if head[:2] in _PICKLE_MAGIC or head == b"PK\x03\x04":  # torch.save's zip holds a pickle
        raise WeightsError(
            f"{p.name!r} is a pickle/torch.save file; zoo loads safetensors only, because "
            "unpickling runs arbitrary code. Declare it in the entry's 'convert' field (the "
            "store converts it with torch.load(weights_only=True)), or convert it once in a "
            "trusted environment with zoo.save_safetensors(torch.load(path, weights_only=True), "
            "'model.safetensors')"
        )
    raise WeightsError(f"{p.name!r} is not a safetensors file (bad header); re-download it")
