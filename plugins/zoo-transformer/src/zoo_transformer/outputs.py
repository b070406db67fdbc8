"""Model outputs that behave like ``transformers``' ``ModelOutput``.

A dataclass whose fields read as attributes (``out.logits``), as keys (``out["logits"]``)
and by position (``out[0]``, ``out[:2]``); fields holding ``None`` are left out of the keys,
the positions and :meth:`~ModelOutput.to_tuple`, so ``out[0]`` is the first value the model
computed, and ``dict(out)`` / ``model(**batch).items()`` hold only those. Attributes of a
``None`` field still read as ``None``; its key raises ``KeyError``, as in ``transformers``.

Example:
    >>> out = zoo.create("model:bert", preset="tiny")(**batch)
    >>> out.last_hidden_state is out["last_hidden_state"] is out[0]
    True
    >>> hidden, pooled = out.to_tuple()
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any


class ModelOutput(Mapping[str, Any]):
    """Base of the output dataclasses; subclasses are ``@dataclass`` with typed fields."""

    def keys(self) -> list[str]:  # type: ignore[override]
        return [f.name for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if getattr(self, f.name) is not None]

    def to_tuple(self) -> tuple[Any, ...]:
        """The values that are not ``None``, in field order."""
        return tuple(getattr(self, k) for k in self.keys())

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{key!r}; this output holds {self.keys()}")
            return getattr(self, key)
        return self.to_tuple()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())
