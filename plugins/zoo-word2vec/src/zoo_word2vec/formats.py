"""The word2vec C tool's vector files, text and binary.

Both start with a header line ``"<vocab size> <vector size>\\n"``. The text format then holds
one line per word: the word and its values separated by spaces. The binary format holds the
word's UTF-8 bytes, a space, ``vector size`` little-endian float32 values and a newline (the
newline is optional when reading, as some writers omit it). Files are written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from zoo_core import InputError, atomic_path


def save_word2vec_format(path: str | os.PathLike[str], words: Sequence[str], vectors: Tensor,
                         binary: bool = False) -> None:
    """Write ``words`` and their (V, D) ``vectors`` in the C tool's text or binary format."""
    if vectors.dim() != 2 or vectors.shape[0] != len(words):
        raise InputError(f"{len(words)} words need a ({len(words)}, D) matrix, got "
                         f"{tuple(vectors.shape)}")
    bad = [w for w in words if not w or any(ch.isspace() for ch in w)]
    if bad:
        raise InputError(f"word(s) {bad[:3]!r} are empty or contain whitespace, which the "
                         "word2vec format cannot hold; save with save_pretrained() instead")
    data = vectors.detach().to(torch.float32).cpu().numpy()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(f"{len(words)} {data.shape[1]}\n".encode())
        for word, row in zip(words, data.astype("<f4", copy=False), strict=True):
            if binary:
                f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
            else:
                f.write((word + " " + " ".join(map(str, row)) + "\n").encode("utf-8"))


def load_word2vec_format(path: str | os.PathLike[str], binary: bool = False,
                         limit: int | None = None) -> tuple[list[str], Tensor]:
    """Read a C tool vector file; return ``(words, vectors (V, D) float32)``."""
    with open(path, "rb") as f:
        header = f.readline().decode("utf-8").split()
        try:
            count, size = int(header[0]), int(header[1])
        except (ValueError, IndexError):
            raise InputError(f"{str(path)!r} does not start with a '<vocab size> <vector size>' "
                             f"header (got {' '.join(header)[:60]!r}); is it a word2vec file?") \
                from None
        if limit is not None:
            count = min(count, limit)
        reader = _read_binary if binary else _read_text
        words, rows = reader(f, count, size, str(path))
    vectors = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, size))
    return words, vectors


def _read_binary(f: object, count: int, size: int, name: str) -> tuple[list[str], np.ndarray]:
    data = f.read()  # type: ignore[attr-defined]
    words, rows = [], np.empty((count, size), dtype="<f4")
    width = 4 * size
    pos = 0
    for i in range(count):
        while pos < len(data) and data[pos:pos + 1] in (b"\n", b" ", b"\r"):
            pos += 1
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + width > len(data):
            raise InputError(f"{name!r} ends after {i} of {count} words; the file is truncated "
                             "or was not written in binary (try binary=False)")
        words.append(data[pos:space].decode("utf-8"))
        rows[i] = np.frombuffer(data, dtype="<f4", count=size, offset=space + 1)
        pos = space + 1 + width
    return words, rows


def _read_text(f: object, count: int, size: int, name: str) -> tuple[list[str], np.ndarray]:
    words, rows = [], np.empty((count, size), dtype=np.float32)
    for i in range(count):
        line = f.readline()  # type: ignore[attr-defined]
        if not line:
            raise InputError(f"{name!r} ends after {i} of {count} words; the file is truncated")
        parts = line.decode("utf-8").rstrip("\n").rstrip().split(" ")
        if len(parts) != size + 1:
            raise InputError(f"{name!r} line {i + 2} has {len(parts) - 1} values, the header "
                             f"says {size}; the file is damaged (or binary: use binary=True)")
        words.append(parts[0])
        rows[i] = np.asarray(parts[1:], dtype=np.float32)
    return words, rows
