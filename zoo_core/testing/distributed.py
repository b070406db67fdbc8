"""Run a function on several gloo processes, as the plugins' distributed tests do.

Example:
    >>> def worker(rank, world_size, n):        # a module-level function
    ...     t = torch.full((n,), float(rank))
    ...     dist.all_reduce(t)
    ...     return t.tolist()
    >>> run_distributed(worker, 3)
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]

A rank that raises fails the whole run at once: the others are killed (they would wait in a
collective for the missing rank) and ``WorkerError`` carries the failing rank's traceback.
"""

from __future__ import annotations

import pickle
import queue as queues
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

_GRACE_S = 2.0  # how long a rank that exited may take to deliver its last message


class WorkerError(RuntimeError):
    """A rank of :func:`run_distributed` raised, died or timed out; the message holds its
    traceback."""

    def __init__(self, rank: int, message: str) -> None:
        super().__init__(f"rank {rank}: {message}")
        self.rank = rank


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(rank: int, world_size: int, port: int, timeout: float, fn: Callable[..., Any],
           args: tuple[Any, ...], queue: Any) -> None:
    """One rank: ``(rank, True, pickled result)`` or ``(rank, False, (time, traceback))`` on
    the queue; the time of failure tells the first failing rank from the peers it took down."""
    try:
        from datetime import timedelta

        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world_size, timeout=timedelta(seconds=timeout))
        result = fn(rank, world_size, *args)
        dist.barrier()  # no rank leaves while a slower one still sets up or uses the group
        dist.destroy_process_group()
        message: tuple[int, bool, Any] = (rank, True, pickle.dumps(result))  # a failure to
        # pickle is this rank's, reported below
    except BaseException:
        message = (rank, False, (time.time(), traceback.format_exc()))
    queue.put(message)


def run_distributed(fn: Callable[..., Any], *args: Any, world_size: int = 2,
                    timeout: float = 240.0) -> list[Any]:
    """Call ``fn(rank, world_size, *args)`` in ``world_size`` spawned processes joined in a
    gloo process group on 127.0.0.1; return each rank's result, in rank order.

    ``fn`` must be importable by the children (a module-level function) and return picklable
    values (numpy arrays rather than tensors, which would travel as shared-memory handles).
    The first rank to raise or die ends the run: the others are killed and ``WorkerError``
    is raised with that rank's traceback. ``timeout`` bounds the whole run.
    """
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_entry, args=(r, world_size, port, timeout, fn, args, queue))
             for r in range(world_size)]
    for p in procs:
        p.start()
    ok = False
    try:
        results = _collect(procs, queue, time.monotonic() + timeout)
        ok = True
    finally:
        for p in procs:
            if not ok:
                p.kill()
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return [results[r] for r in range(world_size)]


def _collect(procs: list[Any], queue: Any, deadline: float) -> dict[int, Any]:
    """Every rank's result; raise ``WorkerError`` for the first rank that failed."""
    results: dict[int, Any] = {}
    errors: dict[int, tuple[float, str]] = {}
    exited: dict[int, float] = {}  # rank -> when it was first seen gone without a message
    first_error = float("inf")
    while len(results) < len(procs):
        now = time.monotonic()
        if errors and (now > first_error + _GRACE_S or len(errors) + len(results) == len(procs)):
            silent = [r for r, p in enumerate(procs)
                      if r not in errors and p.exitcode not in (None, 0)]
            if silent:  # died without a word: the ranks that raised lost their peer
                raise WorkerError(silent[0], f"exited with code {procs[silent[0]].exitcode}")
            rank = min(errors, key=lambda r: errors[r][0])  # the others lost their peer
            raise WorkerError(rank, f"raised:\n{errors[rank][1]}")
        try:
            rank, ok, payload = queue.get(timeout=0.1)
        except queues.Empty:
            for r, p in enumerate(procs):
                if r not in results and r not in errors and p.exitcode is not None \
                        and now - exited.setdefault(r, now) > _GRACE_S:
                    raise WorkerError(r, f"exited with code {p.exitcode} before returning "
                                         "a result") from None
            if now > deadline:
                missing = sorted(set(range(len(procs))) - set(results))
                raise WorkerError(missing[0], f"no result within the timeout; ranks {missing} "
                                              "still running (a collective waiting?)") from None
            continue
        if ok:
            results[rank] = pickle.loads(payload)
        else:
            errors[rank] = payload
            first_error = min(first_error, time.monotonic())
    return results
