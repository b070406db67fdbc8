"""Safetensors files: sniffing a file's format and refusing pickles (the header alone, no
torch), and mapping a file's tensors into memory (``mapped``).

zoo loads weights from safetensors only (a JSON header, then raw tensor bytes).
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import WeightsError

MAX_HEADER = 100 << 20  # the safetensors reader's own limit on the JSON header
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def safetensors_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The parsed JSON header if ``path`` is a safetensors file, else None (never raises
    for content, only for an unreadable path)."""
    with open(path, "rb") as f:
        parsed = _parsed(f.read(8), os.fstat(f.fileno()).st_size, f.read)
    return None if parsed is None else parsed[1]


def _parsed(head: bytes, size: int, read: Callable[[int], bytes]
            ) -> tuple[int, dict[str, Any]] | None:
    """(where the data starts, the JSON header) from a file's first 8 bytes, its size and a
    reader of the next n bytes; None when they are no safetensors header."""
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    if n < 2 or n > min(MAX_HEADER, size - 8):
        return None
    try:
        header = json.loads(read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return (8 + n, header) if isinstance(header, dict) else None


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


_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
           "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
           "BOOL": "bool", "U16": "uint16", "U32": "uint32", "U64": "uint64",
           "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


def mapped(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The tensors of a safetensors file as views of one private (copy-on-write) memory map
    of it: no bytes copied, writing to a tensor never touches the file. The header is checked
    as the safetensors library does (known dtypes, sizes that match the shapes, tensors that
    tile the data exactly); a file that is no safetensors is a ``WeightsError`` (pickles
    named as such). None for what this reader leaves to the safetensors library (a dtype
    this torch lacks, a big-endian machine)."""
    import torch

    if sys.byteorder != "little":
        return None
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if size >= 8 else None
    header = None if buf is None else _parsed(buf[:8], size, lambda n: buf[8:8 + n])
    if header is None:
        refuse_pickle(path)  # names a pickle; else a bad header
        raise WeightsError(f"{Path(path).name!r} is not a safetensors file (bad header); "
                           "re-download it")
    assert buf is not None
    start, header = header
    entries = []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            name = _DTYPES.get(info["dtype"])
            shape, (begin, end) = list(info["shape"]), info["data_offsets"]
            if not all(type(n) is int and n >= 0 for n in [*shape, begin, end]):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise _bad(path, f"tensor {key!r} has an invalid entry {str(info)[:100]}") from None
        dtype = getattr(torch, name, None) if name else None
        if not isinstance(dtype, torch.dtype):  # a dtype for the safetensors library to judge
            return None
        nbytes = math.prod(shape) * dtype.itemsize
        if end - begin != nbytes:
            raise _bad(path, f"tensor {key!r} takes {end - begin} bytes, its shape {shape} "
                             f"{nbytes}")
        entries.append((begin, end, key, dtype, shape))
    entries.sort(key=lambda e: (e[0], e[1]))
    at = 0
    for begin, end, key, *_ in entries:
        if begin != at:
            raise _bad(path, f"tensor {key!r} starts at byte {begin} of the data, not {at}")
        at = end
    if start + at != size:
        raise _bad(path, f"the tensors end at byte {start + at}, the file at {size}; it may be "
                         "truncated")
    out: dict[str, Any] = {}
    for begin, end, key, dtype, shape in entries:
        if begin == end:
            out[key] = torch.empty(shape, dtype=dtype)
            continue
        t = torch.frombuffer(buf, dtype=dtype, count=(end - begin) // dtype.itemsize,
                             offset=start + begin).view(shape)
        out[key] = t if (start + begin) % dtype.itemsize == 0 else t.clone()  # aligned only
    return dict(sorted(out.items()))


def _bad(path: str | os.PathLike[str], what: str) -> WeightsError:
    return WeightsError(f"{Path(path).name!r} cannot be read as safetensors ({what}); it may "
                        "be damaged: remove it and fetch it again")
