"""``tokenizer``: text to ids and back, saved to and loaded from files.

Like a kernel, a tokenizer may have engines (``backends``, fastest first): its pure-Python
reference always, and a format's compiled engine when installed. An engine's ``supports()``
is a self-check run at load (does it give the reference's ids on a fixed probe text?);
:meth:`Tokenizer.use_backend` picks the first that passes with the kernels' own
:func:`~zoo_core.kinds.kernel.select`, and ``backend="name"`` forces one, an engine that
fails its check raising ``UnsupportedError`` with the reason.

Example:
    >>> class Chars(Tokenizer):
    ...     def __init__(self, alphabet="abc"):
    ...         self.alphabet = alphabet
    ...     def encode(self, text, **kw):
    ...         return [self.alphabet.index(c) for c in text]
    ...     def decode(self, ids, **kw):
    ...         return "".join(self.alphabet[i] for i in ids)
    ...     @property
    ...     def vocab_size(self):
    ...         return len(self.alphabet)
    ...     def save(self, directory):
    ...         (Path(directory) / "alphabet.txt").write_text(self.alphabet)
    ...         return ["alphabet.txt"]
    ...     @classmethod
    ...     def load(cls, directory, **options):
    ...         return cls((Path(directory) / "alphabet.txt").read_text())
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from .kernel import Backend, select


class Tokenizer(ABC):
    """Base class of zoo tokenizers. Trainable ones set ``trainable = True``."""

    trainable: ClassVar[bool] = False
    #: engines, fastest first (set per instance by tokenizers that have several)
    backends: dict[str, Backend] = {}  # never mutated: replaced per instance
    #: the engine in use (``None`` for a tokenizer with a single engine)
    backend: str | None = None

    def use_backend(self, backend: str | None = None) -> str:
        """Use the first engine whose load-time check passes, or the forced ``backend``."""
        self.backend = select(f"tokenizer {getattr(self, 'name', type(self).__name__)!r}",
                              self.backends, backend=backend)
        return self.backend

    @abstractmethod
    def encode(self, text: str, **options: Any) -> list[int]:
        """Token ids of ``text``."""

    def encode_batch(self, texts: Sequence[str], **options: Any) -> list[list[int]]:
        """Token ids of each text (override to use several cores)."""
        return [self.encode(t, **options) for t in texts]

    @abstractmethod
    def decode(self, ids: Sequence[int], **options: Any) -> str:
        """The text of ``ids``."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token text to id."""
        return {}

    @abstractmethod
    def save(self, directory: str | os.PathLike[str]) -> list[str]:
        """Write the tokenizer's files into ``directory``; return their names."""

    @classmethod
    @abstractmethod
    def load(cls, directory: str | os.PathLike[str], **options: Any) -> Tokenizer:
        """Read a tokenizer written by :meth:`save` (or a catalogue entry's files)."""

    def train(self, texts: Iterable[str], vocab_size: int, **options: Any) -> Tokenizer:
        """Learn a vocabulary from ``texts`` (trainable tokenizers only)."""
        raise NotImplementedError(f"{type(self).__name__} is not trainable")

    def example_texts(self) -> list[str]:
        """Texts for the contract checks (round trip, save/load)."""
        return ["Hello world!", "zoo tokenizers: 12 animals, one registry.",
                "  spaces\tand\nlines "]
