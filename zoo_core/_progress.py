"""One progress display for all long work in zoo (training, conversion, evaluation).

    >>> import zoo_core as zoo
    >>> for batch in zoo.progress(loader, desc="train"):
    ...     ...
    >>> with zoo.progress(total=n_words, desc="word2vec", unit="word") as bar:
    ...     bar.update(1000, loss=0.31)

It draws a rich progress bar on a terminal and stays silent otherwise (in a pipe, under
pytest, in CI) unless ``disable=False`` is given; ``ZOO_PROGRESS=0`` silences it, ``=1``
forces it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _enabled(disable: bool | None) -> bool:
    if disable is not None:
        return not disable
    env = os.environ.get("ZOO_PROGRESS")
    if env is not None:
        return env not in ("0", "", "false", "no")
    return sys.stderr.isatty()


class progress(Generic[T]):  # noqa: N801 - used like tqdm, as a function
    """Iterate with a progress bar, or update one by hand inside ``with``.

    Args:
        iterable: what to iterate over (optional when used with ``with`` and ``update``).
        total: number of steps (default ``len(iterable)`` when it has one).
        desc: label shown before the bar.
        unit: what one step counts ("step", "word", "image").
        disable: ``True`` hides it, ``False`` shows it even in a pipe; ``None`` decides by
            whether stderr is a terminal.
    """

    def __init__(self, iterable: Iterable[T] | None = None, *, total: float | None = None,
                 desc: str = "", unit: str = "step", disable: bool | None = None) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0.0
        self.postfix: dict[str, Any] = {}
        self._bar: Any = None
        self._task: Any = None
        self._on = _enabled(disable)

    def __enter__(self) -> progress[T]:
        if self._on and self._bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[post]}"),
                                 console=Console(stderr=True), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.desc, total=self.total, post="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1, **postfix: Any) -> None:
        """Advance by ``n`` steps; keyword values (``loss=0.3``) are shown beside the bar."""
        self.n += n
        if postfix:
            self.postfix.update(postfix)
        if self._bar is not None:
            post = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in self.postfix.items())
            self._bar.update(self._task, advance=n, post=post)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("progress() needs an iterable to iterate over")
        with self:
            for item in self.iterable:
                yield item
                self.update(1)
