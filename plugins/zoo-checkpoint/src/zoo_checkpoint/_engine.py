"""Per-instance forward wrappers that drop a block's activations and recompute them.

Three modes, all non-reentrant (the recomputation runs inside the backward pass, so inputs
that do not require grad, keyword arguments and nested outputs all work):

- ``"full"``: ``torch.utils.checkpoint.checkpoint`` keeps the block's inputs only.
- ``"selective"``: the same, with ``create_selective_checkpoint_contexts``: outputs of matrix
  products, convolutions and fused attention are kept, cheap element-wise ops are recomputed
  (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models", 2022).
- ``"segment"``: consecutive blocks form one segment (Chen et al., "Training Deep Nets with
  Sublinear Memory Cost", 2016, section 4): only the segment's input is kept; on the first
  backward use of any dropped tensor the whole segment is re-run, block after block, feeding
  each block the recomputed output of the one before when the model chained them. The forward
  leaves a tape (:mod:`zoo_checkpoint._tape`) that the re-run plays back: the outputs of the
  matrix products that are dear to recompute for the bytes they take, and the dropout masks
  as bits, so that the re-run neither recomputes those products nor draws random numbers.

The RNG state is restored before each recomputed block (full and selective modes; segment
mode when a block ran a random op other than a Bernoulli draw), the autocast state of the
forward is re-entered, and BatchNorm running statistics are restored after a
recomputation so that they are updated once per step, as without checkpointing.
The wrapper replaces ``block.forward`` on the instance only: parameters, buffers and
state-dict keys do not change, and ``unwrap`` restores the block exactly.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    create_selective_checkpoint_contexts,
)

from zoo_core import ConfigError, ZooError

from ._tape import Tape, TapeMode

MODES = ("full", "selective", "segment")

_aten = torch.ops.aten
SAVE_OPS = tuple(op for op in (
    _aten.mm.default, _aten.addmm.default, _aten.bmm.default, _aten.baddbmm.default,
    _aten.convolution.default, _aten._scaled_dot_product_flash_attention.default,
    _aten._scaled_dot_product_efficient_attention.default,
    getattr(_aten, "_scaled_dot_product_flash_attention_for_cpu", None),
    getattr(_aten, "_scaled_dot_product_cudnn_attention", None),
) if op is not None)
SAVE_OPS = tuple(getattr(op, "default", op) for op in SAVE_OPS)

# Route the tensors selective checkpointing keeps through the profiler's saved_tensors_hooks
# (torch >= 2.15; older versions keep them out of sight and the profiler undercounts them).
_RESPECT_HOOKS = ({"respect_saved_tensors_hooks": True}
                  if "respect_saved_tensors_hooks" in inspect.signature(checkpoint).parameters
                  else {})

# The profiler's hook into the wrappers: called with every tensor a wrapper holds itself.
_HELD: list[Callable[[Tensor], None]] = []


def _report_held(tensors: Iterator[Tensor]) -> None:
    if _HELD:
        for t in tensors:
            _HELD[-1](t)


def _report_one(t: Tensor) -> None:
    _HELD[-1](t)


def _tensors(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _first_tensor(obj: Any) -> Tensor | None:
    return next(_tensors(obj), None)


def _save_matmuls(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in SAVE_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def _selective_context() -> tuple[Any, Any]:
    return create_selective_checkpoint_contexts(_save_matmuls)


def _batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.training and m.track_running_stats and m.running_mean is not None]


def scratch_stats(module: nn.Module) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Spare copies of the BatchNorm running statistics of ``module``'s training BNs."""
    return [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
            for m in _batchnorms(module)]


@contextlib.contextmanager
def running_stats_kept(module: nn.Module,
                       scratch: list[tuple[Tensor, Tensor, Tensor]] | None = None
                       ) -> Iterator[None]:
    """Point BatchNorm running statistics at scratch tensors during a recomputation.

    The recomputation updates the scratch copies and the real buffers stay as the forward
    left them, so the statistics are updated once per step. Swapping attributes runs no
    tensor op, which keeps selective checkpointing's op replay exact.
    """
    mods = _batchnorms(module)
    if not mods:
        yield
        return
    scratch = scratch if scratch is not None else scratch_stats(module)
    real = [(m.running_mean, m.running_var, m.num_batches_tracked) for m in mods]
    for m, (mean, var, count) in zip(mods, scratch, strict=True):
        m.running_mean, m.running_var, m.num_batches_tracked = mean, var, count
    try:
        yield
    finally:
        for m, (mean, var, count) in zip(mods, real, strict=True):
            m.running_mean, m.running_var, m.num_batches_tracked = mean, var, count


def _autocast_state() -> list[tuple[str, torch.dtype]]:
    return [(d, torch.get_autocast_dtype(d)) for d in ("cpu", "cuda")
            if torch.amp.is_autocast_available(d) and torch.is_autocast_enabled(d)]


def _rng_state(args: Any) -> tuple[Tensor, list[tuple[int, Tensor]]]:
    cuda = sorted({t.device.index or 0 for t in _tensors(args) if t.is_cuda})
    return torch.get_rng_state(), [(i, torch.cuda.get_rng_state(i)) for i in cuda]


@contextlib.contextmanager
def _replay(rng: tuple[Tensor, list[tuple[int, Tensor]]] | None,
            autocast: list[tuple[str, torch.dtype]]) -> Iterator[None]:
    """Re-enter the forward's autocast state and, unless ``rng`` is None, its RNG state."""
    with contextlib.ExitStack() as stack:
        if rng is not None:
            stack.enter_context(torch.random.fork_rng(devices=[i for i, _ in rng[1]]))
            torch.set_rng_state(rng[0])
            for i, state in rng[1]:
                torch.cuda.set_rng_state(state, i)
        for device, dtype in autocast:
            stack.enter_context(torch.autocast(device, dtype=dtype))
        yield


class SegmentGroup:
    """Blocks ``0..n-1`` of one segment, in forward order; tracks the open recording."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.open: _Recording | None = None
        self.last_pos = -1
        self.last_out: weakref.ref[Tensor] | None = None


class _Recording:
    """One forward pass through a segment: the calls to replay, the dropped tensors and the
    tape of kept products and dropout masks."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], nn.Module, Any, Any, bool | None, Any, Any]] = []
        self.packed = 0
        self.store: dict[int, Tensor] = {}
        self.tape = Tape()

    def pack(self, t: Tensor) -> tuple[_Recording, int]:
        self.packed += 1
        return self, self.packed - 1

    def recompute(self) -> None:
        store: dict[int, Tensor] = {}

        def keep(t: Tensor) -> int:
            store[len(store)] = t.detach()
            return len(store) - 1

        prev: Tensor | None = None
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(keep, _no_unpack), \
                TapeMode(self.tape, replay=True):
            for fn, module, args, kwargs, chained, rng, autocast in self.calls:
                if chained is not None:  # first arg: the recomputed output of the block before
                    if prev is None:
                        raise ZooError("segment checkpointing lost a chained block output")
                    args = (prev.detach().requires_grad_(chained), *args)
                with _replay(rng if self.tape.needs_rng else None, autocast), \
                        running_stats_kept(module):
                    out = fn(*args, **kwargs)
                prev = _first_tensor(out)
        if len(store) != self.packed:
            raise ZooError(
                f"segment recomputation saved {len(store)} tensors, the forward saved "
                f"{self.packed}: the blocks are not deterministic given their inputs and RNG "
                "state (data-dependent control flow?); use policy='every' for this model")
        self.store = store


def _no_unpack(_: int) -> Tensor:  # pragma: no cover - the recompute graph is discarded
    raise ZooError("internal: a recomputed graph was differentiated")


def _unpack(handle: tuple[_Recording, int]) -> Tensor:
    rec, idx = handle
    if idx not in rec.store:
        rec.recompute()
    return rec.store.pop(idx)


class Checkpointed:
    """Callable installed as ``block.forward``: runs the block's own forward checkpointed."""

    def __init__(self, block: nn.Module, mode: str, group: SegmentGroup | None = None,
                 pos: int = 0) -> None:
        if mode not in MODES:
            raise ConfigError(f"checkpoint mode {mode!r} is unknown; valid: {MODES}")
        self.block, self.mode, self.group, self.pos = block, mode, group, pos
        self.previous = block.__dict__.get("forward")  # an instance forward we replace

    def inner(self, *args: Any, **kwargs: Any) -> Any:
        if self.previous is not None:
            return self.previous(*args, **kwargs)
        return type(self.block).forward(self.block, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():
            return self.inner(*args, **kwargs)
        if self.mode == "segment":
            return self._segment(args, kwargs)
        calls = [0]
        scratch = scratch_stats(self.block)  # made here, outside the checkpoint's op modes

        def run(*a: Any, **k: Any) -> Any:
            calls[0] += 1
            if calls[0] == 1:
                return self.inner(*a, **k)
            with running_stats_kept(self.block, scratch):  # a recomputation
                return self.inner(*a, **k)

        _report_held(_tensors((args, kwargs)))
        if self.mode == "selective":
            return checkpoint(run, *args, use_reentrant=False, preserve_rng_state=True,
                              context_fn=_selective_context, **_RESPECT_HOOKS, **kwargs)
        return checkpoint(run, *args, use_reentrant=False, preserve_rng_state=True, **kwargs)

    def _segment(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        g = self.group
        assert g is not None
        rec = g.open
        prev = g.last_out() if g.last_out is not None else None
        if rec is None or self.pos != g.last_pos + 1 or self.pos == 0:
            rec = g.open = _Recording()
            prev = None
        chained: bool | None = None
        stored_args: tuple[Any, ...] = args
        if prev is not None and args and args[0] is prev:
            chained, stored_args = args[0].requires_grad, args[1:]
        else:
            stored_args = tuple(a.detach().requires_grad_(a.requires_grad)
                                if isinstance(a, Tensor) else a for a in args)
        _report_held(_tensors((stored_args, kwargs)))
        rec.calls.append((self.inner, self.block, stored_args, kwargs, chained,
                          _rng_state(args), _autocast_state()))
        with torch.autograd.graph.saved_tensors_hooks(rec.pack, _unpack), \
                TapeMode(rec.tape, replay=False, report=_report_one if _HELD else None):
            out = self.inner(*args, **kwargs)
        first = _first_tensor(out)
        g.last_pos = self.pos
        g.last_out = weakref.ref(first) if first is not None else None
        if self.pos == g.size - 1:
            g.open = None
        return out


def mutates_in_place(block: nn.Module) -> bool:
    """Whether the block holds modules that overwrite their input (``ReLU(inplace=True)``)."""
    return any(getattr(m, "inplace", False) is True for m in block.modules())


def wrap(block: nn.Module, mode: str, group: SegmentGroup | None = None, pos: int = 0) -> None:
    """Install a checkpointing forward on this block instance.

    ``"selective"`` becomes ``"full"`` on a block with in-place modules: an in-place op would
    overwrite a kept matmul/conv output, which selective checkpointing cannot replay.
    """
    unwrap(block)
    if mode == "selective" and mutates_in_place(block):
        mode = "full"
    block.forward = Checkpointed(block, mode, group, pos)  # type: ignore[method-assign]


def unwrap(block: nn.Module) -> None:
    """Remove a checkpointing forward installed by :func:`wrap` (no-op if none)."""
    current = block.__dict__.get("forward")
    if isinstance(current, Checkpointed):
        if current.previous is None:
            del block.__dict__["forward"]
        else:
            block.forward = current.previous  # type: ignore[method-assign]


def mode_of(block: nn.Module) -> str:
    current = block.__dict__.get("forward")
    return current.mode if isinstance(current, Checkpointed) else "none"
