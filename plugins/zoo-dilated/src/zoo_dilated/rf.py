"""Exact receptive field, jump and centre offset of a network, by tracing its module graph.

Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks", Distill
2019, eq. (1)-(3) in interval form. Output index ``i`` of a layer reads the input positions
``[i J + L, i J + R]``, where ``J`` is the jump (effective stride) and ``[L, R]`` the interval
of output 0. A layer of kernel ``k``, stride ``s``, dilation ``d`` and left padding ``p``
maps the interval of its input ``(L, R, J)`` to

    L' = L − p J,    R' = R + (d (k − 1) − p) J,    J' = s J,

so the size is ``R − L + 1`` and the centre offset ``(L + R) / 2``. Where branches meet
(residual add, concatenation, gating) the intervals unite (``min L``, ``max R``); their jumps
must agree. Global pooling, group/instance/layer norm (statistics over all positions) make
every output depend on the whole input: the receptive field is then global.

The model is traced with ``torch.fx``; a layer with no exact rule (transposed convolution,
bilinear upsampling of a spatial map, adaptive pooling to more than one cell, slicing) raises
``UnsupportedError`` naming it. Batch norm is taken in inference form (per position).

Example:
    >>> rf = receptive_field(torchvision.models.resnet50().layer1)
    >>> rf = receptive_field(zoo.create("model:dilated-resnet", preset="resnet101"))
    >>> rf.size, rf.jump, rf.centre
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from zoo_core import InputError, UnsupportedError

from ._rf_rules import _GLOBAL, _infer_ndim, _size, _Tracer, _Walker


def passthrough(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a ``torch.fx.wrap``-ped check ``fn(x, ...) -> x`` as geometry-neutral for tracing."""
    fn._zoo_rf_passthrough = True  # type: ignore[attr-defined]
    return fn


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one output position, per spatial dimension.

    Attributes:
        size: input positions one output reads (``math.inf`` when global).
        jump: input positions between two neighbouring outputs (the total stride).
        start: first input position read by output 0 (negative: it reaches into padding).
        layers: ``(layer name, size, jump, start)`` after each traced layer, in order.
    """

    size: tuple[float, ...]
    jump: tuple[int, ...]
    start: tuple[float, ...]
    layers: tuple[tuple[str, tuple[float, ...], tuple[int, ...], tuple[float, ...]], ...] = ()

    @property
    def is_global(self) -> bool:
        """Whether every output depends on the whole input."""
        return any(math.isinf(s) for s in self.size)

    @property
    def centre(self) -> tuple[float, ...]:
        """Centre offset: input coordinate of the centre of output 0's receptive field."""
        return tuple(a + (s - 1) / 2 for a, s in zip(self.start, self.size, strict=True))

    def interval(self, index: Sequence[int]) -> tuple[tuple[float, float], ...]:
        """Inclusive input interval ``(first, last)`` per dimension read by output ``index``."""
        if len(index) != len(self.jump):
            raise InputError(f"index={tuple(index)!r} has {len(index)} coordinates; this "
                                f"receptive field has {len(self.jump)} spatial dimensions")
        return tuple((a + i * j, a + i * j + s - 1)
                     for a, i, j, s in zip(self.start, index, self.jump, self.size, strict=True))


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx`` graph of ``model`` with known layers (and their subclasses) kept whole."""
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as e:
        raise UnsupportedError(
            f"{type(model).__name__} cannot be traced symbolically ({type(e).__name__}: {e}); "
            "receptive fields need a forward without data-dependent control flow") from e
    return fx.GraphModule(tracer.root, graph)


def receptive_field(model: nn.Module, *, output: str | int | None = None,
                    spatial_dims: int | None = None,
                    input_size: Sequence[int] | None = None) -> ReceptiveField:
    """Exact receptive field of ``model``'s output with respect to its first input.

    Args:
        model: a network of convolutions, pooling and pointwise layers composed sequentially,
            residually or by concatenation (any ``torch.fx``-traceable forward).
        output: which output to follow when ``forward`` returns a dict (key) or tuple (index);
            by default the first tensor.
        spatial_dims: 1, 2 or 3; inferred from the first convolution or pooling by default.
        input_size: spatial size of the input; when given, every layer's output size is
            checked and a layer whose window no longer fits raises ``InputError``.

    Returns:
        A :class:`ReceptiveField` with ``size``, ``jump``, ``start``, ``centre`` per dimension.
    """
    gm = model if isinstance(model, fx.GraphModule) else trace(model)
    n = spatial_dims or _infer_ndim(gm)
    if n not in (1, 2, 3):
        raise InputError(f"spatial_dims={n!r}: cannot tell how many spatial dimensions "
                            f"{type(model).__name__} has; pass spatial_dims=1, 2 or 3")
    if input_size is not None and len(input_size) != n:
        raise InputError(f"input_size={tuple(input_size)!r} must have {n} entries (one per "
                            "spatial dimension), e.g. (H, W)")
    walker = _Walker(gm, n, input_size)
    out_node = next(node for node in gm.graph.nodes if node.op == "output")
    chosen = _select(out_node.args[0], output)
    needed = _ancestors(chosen)
    for node in gm.graph.nodes:
        if node in needed:
            walker.env[node] = s = walker.run(node)
            walker.record(node, s)
    states = [s for s in walker.state(chosen) if s is not None]
    result = states[0] if states else None
    if result is None:
        raise InputError(f"{type(model).__name__}'s output {output!r} does not depend on its "
                            "input spatially; pass output=<key or index> of a feature map")
    layers = tuple(walker.layers)
    if result == _GLOBAL:
        return ReceptiveField((math.inf,) * n, (0,) * n, (-math.inf,) * n, layers)
    return ReceptiveField(_size(result), tuple(result.jump), tuple(result.left), layers)


def _select(out: Any, key: str | int | None) -> Any:
    """The part of the traced output to follow: ``out[key]``, else its first node."""
    if key is None:
        while isinstance(out, (tuple, list, dict)) and out:
            out = next(iter(out.values())) if isinstance(out, dict) else out[0]
        return out
    if isinstance(out, dict) and key in out:
        return out[key]
    if isinstance(out, (tuple, list)) and isinstance(key, int) and -len(out) <= key < len(out):
        return out[key]
    keys = list(out) if isinstance(out, dict) else \
        list(range(len(out))) if isinstance(out, (tuple, list)) else []
    raise InputError(f"output={key!r} is not an output of this model; valid: {keys}")


def _ancestors(arg: Any) -> set[fx.Node]:
    stack = _nodes(arg)
    seen: set[fx.Node] = set()
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(node.all_input_nodes)
    return seen


def _nodes(arg: Any) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg(arg, found.append)
    return found


def min_input_size(model: nn.Module, *, spatial_dims: int | None = None,
                   limit: int = 1 << 16) -> int:
    """Smallest input length (the same in every spatial dimension) every layer can take.

    Example:
        >>> min_input_size(nn.Conv2d(1, 1, 3, dilation=4))   # valid padding: span 9
        9
    """
    gm = model if isinstance(model, fx.GraphModule) else trace(model)
    n = spatial_dims or _infer_ndim(gm) or 2

    def fits(size: int) -> bool:
        try:
            receptive_field(gm, spatial_dims=n, input_size=[size] * n)
        except InputError:
            return False
        return True

    lo, hi = 1, 1
    while not fits(hi):
        lo, hi = hi + 1, hi * 2
        if hi > limit:
            raise InputError(f"no input up to {limit} fits {type(model).__name__}")
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    return lo
