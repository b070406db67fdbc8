"""Measure what checkpointing saves and costs: per block, and per policy (a Pareto table).

Saved-activation bytes are counted device-independently with
``torch.autograd.graph.saved_tensors_hooks``: every tensor the autograd graph keeps for the
backward pass (plus the inputs a checkpoint wrapper holds to recompute from) is counted once
per storage; parameters are not activations and are left out. Times are wall-clock
(``torch.cuda.synchronize`` around them on a GPU).

Example:
    >>> prof = zoo_checkpoint.profile(model, inputs)
    >>> print(prof.table())           # policy, saved bytes, ratio, step time, ratio
    >>> prof.plot("pareto.png")
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

import zoo_core as zoo

from . import _engine
from ._engine import SAVE_OPS, unwrap, wrap


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class SavedBytes:
    """Count unique storages saved for backward, attributed to the running block (or -1)."""

    def __init__(self, model: nn.Module) -> None:
        self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.seen: dict[int, tuple[int, int]] = {}
        self.block = -1

    def add(self, t: Tensor) -> None:
        try:
            storage = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # tensors without storage
            return
        ptr = storage.data_ptr()
        if ptr in self.params or ptr in self.seen or storage.nbytes() == 0:
            return
        self.seen[ptr] = (storage.nbytes(), self.block)

    def pack(self, t: Tensor) -> Tensor:
        self.add(t)
        return t

    @property
    def total(self) -> int:
        return sum(n for n, _ in self.seen.values())

    def of_block(self, j: int) -> int:
        return sum(n for n, b in self.seen.values() if b == j)


@contextlib.contextmanager
def counting(model: nn.Module, blocks: list[nn.Module] | None = None) -> Iterator[SavedBytes]:
    """Count the saved bytes of the forward passes run inside (attributed to ``blocks``)."""
    counter = SavedBytes(model)
    handles = []
    for j, block in enumerate(blocks or []):
        handles.append(block.register_forward_pre_hook(
            lambda m, a, j=j: setattr(counter, "block", j)))
        handles.append(block.register_forward_hook(
            lambda m, a, o: setattr(counter, "block", -1)))
    _engine._HELD.append(counter.add)
    try:
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
            yield counter
    finally:
        _engine._HELD.pop()
        for h in handles:
            h.remove()


class _OpTimer(TorchDispatchMode):
    """Wall time of the ops outside ``SAVE_OPS`` (what selective checkpointing recomputes)."""

    def __init__(self) -> None:
        super().__init__()
        self.cheap = 0.0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        t0 = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        if func not in SAVE_OPS:
            _sync()
            self.cheap += time.perf_counter() - t0
        return out


@dataclass(frozen=True)
class BlockStats:
    saved_bytes: int  # saved for backward without checkpointing
    input_bytes: int  # kept by a full checkpoint (its inputs)
    selective_bytes: int  # kept under selective checkpointing
    forward_s: float  # recompute time of a full checkpoint
    selective_s: float  # recompute time of selective checkpointing (element-wise ops)


@dataclass(frozen=True)
class BlockProfile:
    blocks: tuple[BlockStats, ...]
    other_bytes: int  # saved outside the blocks (embeddings, heads)
    total_none: int  # everything saved without checkpointing


def _forward(model: nn.Module, inputs: dict[str, Any]) -> Any:
    return model(**inputs)


def profile_blocks(model: nn.Module, inputs: dict[str, Any],
                   blocks: list[nn.Module]) -> BlockProfile:
    """Per-block saved bytes and recompute times of ``model`` on ``inputs`` (one forward each)."""
    modes = [b.__dict__.get("forward") for b in blocks]  # restored afterwards
    for b in blocks:
        unwrap(b)
    rng = torch.get_rng_state()
    buffers = {n: b.clone() for n, b in model.named_buffers()}  # BN statistics, restored below
    times = [0.0] * len(blocks)
    cheap = [0.0] * len(blocks)
    inputs_bytes = [0] * len(blocks)
    timer_handles = []
    starts: dict[int, float] = {}
    timers: dict[int, _OpTimer] = {}

    def pre(j: int, args: Any, kwargs: Any) -> None:
        held = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                for t in _engine._tensors((args, kwargs))}
        inputs_bytes[j] = sum(held.values())
        timers[j] = _OpTimer()
        timers[j].__enter__()
        _sync()
        starts[j] = time.perf_counter()

    def post(j: int) -> None:
        _sync()
        times[j] += time.perf_counter() - starts[j]
        timers[j].__exit__(None, None, None)
        cheap[j] += timers[j].cheap

    for j, b in enumerate(blocks):
        timer_handles.append(b.register_forward_pre_hook(
            lambda m, a, k, j=j: pre(j, a, k), with_kwargs=True))
        timer_handles.append(b.register_forward_hook(lambda m, a, o, j=j: post(j)))
    try:
        with counting(model, blocks) as plain:
            _forward(model, inputs)
    finally:
        for h in timer_handles:
            h.remove()
    for b in blocks:
        wrap(b, "selective")
    torch.set_rng_state(rng)
    try:
        with counting(model, blocks) as sel:
            _forward(model, inputs)
    finally:
        for b, previous in zip(blocks, modes, strict=True):
            unwrap(b)
            if previous is not None:
                b.forward = previous
    torch.set_rng_state(rng)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
    stats = tuple(BlockStats(plain.of_block(j), inputs_bytes[j], sel.of_block(j), times[j],
                             cheap[j]) for j in range(len(blocks)))
    return BlockProfile(stats, plain.of_block(-1), plain.total)


def saved_bytes(model: nn.Module, inputs: dict[str, Any]) -> int:
    """Bytes saved for backward by one forward of ``model`` as it is (checkpointed or not)."""
    with counting(model) as counter:
        out = _forward(model, inputs)
    del out
    return counter.total


def _loss(out: Any) -> Tensor:
    tensors = [t for t in _engine._tensors(out if not hasattr(out, "__dataclass_fields__")
                                           else list(vars(out).values()))
               if t.is_floating_point() and t.requires_grad]
    return sum(t.float().mean() for t in tensors)  # type: ignore[return-value]


def step_time(model: nn.Module, inputs: dict[str, Any], repeats: int = 3) -> float:
    """Median wall time of forward + backward of ``model`` on ``inputs``."""
    times = []
    for _ in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        _sync()
        t0 = time.perf_counter()
        _loss(_forward(model, inputs)).backward()
        _sync()
        times.append(time.perf_counter() - t0)
    times = sorted(times[1:])
    return times[len(times) // 2]


@dataclass
class Profile:
    """Per-policy saved bytes and step time, with ratios to no checkpointing."""

    rows: list[tuple[str, int, float]] = field(default_factory=list)  # policy, bytes, seconds
    blocks: BlockProfile | None = None

    def table(self) -> str:
        base_b, base_t = self.rows[0][1], self.rows[0][2]
        lines = ["| policy | saved activations (MiB) | × none | step (s) | × none |",
                 "|---|---:|---:|---:|---:|"]
        for name, nbytes, secs in self.rows:
            lines.append(f"| {name} | {nbytes / 2**20:.1f} | {nbytes / base_b:.3f} | "
                         f"{secs:.3f} | {secs / base_t:.2f} |")
        return "\n".join(lines)

    def pareto(self) -> list[str]:
        """Policies no other policy beats on both bytes and time."""
        return [a for a, ab, at in self.rows
                if not any(bb <= ab and bt <= at and (bb, bt) != (ab, at)
                           for _, bb, bt in self.rows)]

    def plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Saved bytes vs step time, one marker per policy, named in the legend.

        Returns a matplotlib ``Figure`` of its own (no pyplot state); with ``path`` the PNG
        is written atomically with the umask's mode. Needs ``zoo-checkpoint[plot]``.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as e:
            raise zoo.ZooError("plotting needs matplotlib: "
                               "pip install 'zoo-checkpoint[plot]'") from e
        base_b, base_t = self.rows[0][1], self.rows[0][2]
        fig = Figure(figsize=(7.5, 4.2), layout="constrained")
        ax = fig.add_subplot()
        front = self.pareto()
        points = {name: (secs, nbytes / 2**20) for name, nbytes, secs in self.rows}
        if len(front) > 1:  # the Pareto front, as a staircase from fast to frugal
            xs, ys = zip(*sorted(points[n] for n in front), strict=True)
            ax.step(xs, ys, where="post", color="0.75", lw=1, zorder=1,
                    label="Pareto front")
        markers = "osD^vP*Xh<>"
        for i, (name, nbytes, secs) in enumerate(self.rows):
            ax.scatter(secs, nbytes / 2**20, s=60, marker=markers[i % len(markers)],
                       color=f"C{i % 10}", zorder=2, edgecolors="black" if name in front
                       else "none", label=f"{name}: {nbytes / base_b:.3f}x memory, "
                                          f"{secs / base_t:.2f}x time")
        ax.set_xlabel("step time, forward + backward (s)")
        ax.set_ylabel("saved activations (MiB)")
        ax.set_title("gradient checkpointing: memory vs recompute")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
                  title="policy (ratios to none; outlined: on the front)", title_fontsize=8)
        if path is not None:
            with zoo.atomic_path(path) as tmp:
                fig.savefig(tmp, format="png", dpi=120)
        return fig


def profile(model: nn.Module, inputs: dict[str, Any] | None = None,
            policies: tuple[Any, ...] = ("none", "every", "every-k", "sqrt",
                                         ("budget", {"fraction": 0.3}), "selective"),
            repeats: int = 3) -> Profile:
    """Saved bytes and step time of ``model`` under each policy (on copies of the model)."""
    from .transform import Checkpoint, find_blocks

    inputs = inputs if inputs is not None else model.example_inputs()
    out = Profile(blocks=profile_blocks(model, inputs, find_blocks(model)))
    for spec in zoo.progress(policies, desc="checkpoint policies", unit="policy"):
        name, options = (spec, {}) if isinstance(spec, str) else spec
        twin = Checkpoint(policy=name, inputs=inputs, **options).apply(copy.deepcopy(model))
        label = name if not options else f"{name}({', '.join(f'{v}' for v in options.values())})"
        out.rows.append((label, saved_bytes(twin, inputs), step_time(twin, inputs, repeats)))
    return out
