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

import functools
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ._contract import not_declared
from .kernel import Backend, select


class Tokenizer(ABC):
    """Base class of zoo tokenizers. Trainable ones set ``trainable = True``.
    ``contract_opt_outs`` maps a contract check this tokenizer opts out of to the reason."""

    trainable: ClassVar[bool] = False
    contract_opt_outs: ClassVar[Mapping[str, str]] = {}
    #: engines, fastest first (set per instance by tokenizers that have several)
    backends: dict[str, Backend] = {}  # never mutated: replaced per instance
    #: the engine in use (``None`` for a tokenizer with a single engine)
    backend: str | None = None

    def use_backend(self, backend: str | None = None) -> str:
        """Use the first engine whose load-time check passes, or the forced ``backend``."""
        self.backend = select(f"tokenizer {getattr(self, 'name', type(self).__name__)!r}",
                              self.backends, backend=backend)
        return self.backend

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's ``save`` also writes the ``config.json`` naming its component, so any
        saved folder loads back with ``zoo.load("dir:…")``, as model folders do."""
        super().__init_subclass__(**kwargs)
        save = cls.__dict__.get("save")
        if save is None or getattr(save, "_zoo_names_component", False):
            return

        @functools.wraps(save)
        def save_and_name(self: Tokenizer, directory: str | os.PathLike[str]) -> list[str]:
            from .._publish import name_component

            files = list(save(self, directory))
            return files + name_component(self, Path(directory), files)

        save_and_name._zoo_names_component = True  # type: ignore[attr-defined]
        cls.save = save_and_name  # type: ignore[method-assign]

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
        """Write the tokenizer's files into ``directory``; return their names. (The base class
        adds a ``config.json`` naming the component when the class is registered.)"""

    @classmethod
    @abstractmethod
    def load(cls, directory: str | os.PathLike[str], **options: Any) -> Tokenizer:
        """Read a tokenizer written by :meth:`save` (or a catalogue entry's files)."""

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write :meth:`save`'s files plus a ``config.json`` naming this component, so
        ``zoo.load("dir:…")`` (or :meth:`from_pretrained`) reads the folder back."""
        from .._publish import save

        return save(self, directory)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str]) -> Tokenizer:
        """The tokenizer of an entry (a model entry gives its tokenizer), ``hf:``/``dir:`` or
        a folder written by :meth:`save_pretrained`."""
        from .._errors import InputError
        from .._publish import load_tokenizer

        text = str(name_or_path)
        tok = load_tokenizer(f"dir:{text}" if os.path.isdir(text) else text)
        if not isinstance(tok, cls):
            raise InputError(f"{text!r} holds a {type(tok).__name__}, not a {cls.__name__}")
        return tok  # type: ignore[no-any-return]

    def train(self, texts: Iterable[str], vocab_size: int, **options: Any) -> Tokenizer:
        """Learn a vocabulary from ``texts`` (trainable tokenizers only)."""
        raise NotImplementedError(f"{type(self).__name__} is not trainable")

    def example_texts(self) -> list[str]:
        """Texts for the contract checks (round trip, save/load)."""
        return ["Hello world!", "zoo tokenizers: 12 animals, one registry.",
                "  spaces\tand\nlines "]

    def bad_inputs(self) -> list[Any]:
        """Values that ``encode`` must refuse with a ``ZooError`` (a non-string, …)."""
        raise not_declared(self, "bad_inputs", "bad_inputs")
