"""Streamed corpora: one sentence per line, tokens separated by whitespace."""

from __future__ import annotations

import bz2
import gzip
import os
from collections.abc import Iterator
from pathlib import Path

from zoo_core import ConfigError, InputError


class LineSentences:
    """A re-iterable corpus read lazily from a text file (``.bz2``/``.gz`` too).

    Each line is a sentence of whitespace-separated tokens; lines longer than
    ``max_sentence_length`` tokens are split, so a corpus need never fit in memory.

    Example:
        >>> corpus = LineSentences("text8")
        >>> model.build_vocab(corpus); model.train(corpus)
    """

    def __init__(self, path: str | os.PathLike[str], max_sentence_length: int = 10_000,
                 limit: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"corpus file {str(self.path)!r} does not exist")
        if max_sentence_length < 1:
            raise ConfigError(f"max_sentence_length={max_sentence_length!r} must be >= 1")
        self.max_sentence_length = max_sentence_length
        self.limit = limit

    def __iter__(self) -> Iterator[list[str]]:
        opener = {".bz2": bz2.open, ".gz": gzip.open}.get(self.path.suffix, open)
        with opener(self.path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
            for n, line in enumerate(f):
                if self.limit is not None and n >= self.limit:
                    return
                tokens = line.split()
                for i in range(0, len(tokens), self.max_sentence_length):
                    yield tokens[i:i + self.max_sentence_length]
