"""Interval rules of the receptive-field tracer (:mod:`zoo_dilated.rf`), one per layer kind.

Each traced node maps the state of its inputs to its own: ``None`` (no spatial dependence on
the input: shapes, constants), ``"global"`` (every input position reaches every output) or a
:class:`_Span` holding, per spatial dimension, the interval ``[L, R]`` of output 0, the jump
``J`` and, when an input size is given, the length of the feature map.
"""

from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from zoo_core import InputError, UnsupportedError

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MAXPOOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVGPOOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
             nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_POINTWISE = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.Identity, nn.ReLU,
    nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
    nn.Tanhshrink, nn.Threshold, nn.LogSigmoid, nn.Softmax2d, nn.Dropout, nn.Dropout1d,
    nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.LocalResponseNorm,
)
_GLOBAL_NORMS = (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
                 nn.InstanceNorm3d)
_FLATTENERS = (nn.Linear, nn.Flatten)
_KNOWN = _CONVS + _MAXPOOLS + _AVGPOOLS + _ADAPTIVE + _POINTWISE + _GLOBAL_NORMS + _FLATTENERS

_POINTWISE_FUNCS: set[Any] = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.iadd,
    operator.imul, torch.add, torch.sub, torch.mul, torch.div, torch.maximum, torch.minimum,
    torch.relu, torch.sigmoid, torch.tanh, torch.exp, torch.abs, torch.clamp, F.relu, F.relu6,
    F.gelu, F.silu, F.mish, F.leaky_relu, F.elu, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh,
    F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.batch_norm, F.softplus,
}
_POINTWISE_METHODS = {
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "add", "add_", "mul", "mul_", "sub",
    "sub_", "div", "div_", "contiguous", "clone", "float", "double", "half", "to", "type_as",
    "exp", "abs", "clamp", "clamp_", "neg",
}
_REDUCE_METHODS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var"}
_RESHAPE_METHODS = {"view", "reshape", "flatten", "expand", "expand_as", "squeeze", "unsqueeze"}
_FUNCTIONAL_CONV = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}
_FUNCTIONAL_POOL = {F.max_pool1d: 1, F.max_pool2d: 2, F.max_pool3d: 3, F.avg_pool1d: 1,
                    F.avg_pool2d: 2, F.avg_pool3d: 3}
_FUNCTIONAL_ADAPTIVE = {F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
                        F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d}


class _Span:
    """Interval ``[L, R]`` of output 0 and jump ``J`` per dimension; ``n`` the length, if known."""

    __slots__ = ("left", "right", "jump", "length")

    def __init__(self, left: list[int], right: list[int], jump: list[int],
                 length: list[int] | None) -> None:
        self.left, self.right, self.jump, self.length = left, right, jump, length


_GLOBAL = "global"  # every position of the input reaches every output


def _tuple(value: Any, n: int) -> list[int]:
    return list(value) if isinstance(value, (tuple, list)) else [int(value)] * n


class _Tracer(fx.Tracer):
    """Keeps known layers (and their subclasses that keep the base forward) as leaves."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        for base in _KNOWN:
            if isinstance(m, base):
                return type(m).forward is base.forward
        return super().is_leaf_module(m, qualname)


class _Walker:
    def __init__(self, gm: fx.GraphModule, ndim: int, input_size: Sequence[int] | None) -> None:
        self.gm, self.n = gm, ndim
        self.modules = dict(gm.named_modules())
        self.input_size = list(input_size) if input_size is not None else None
        self.env: dict[fx.Node, Any] = {}
        self.layers: list[tuple[str, tuple[float, ...], tuple[int, ...], tuple[float, ...]]] = []
        self.first = next((n for n in gm.graph.nodes if n.op == "placeholder"), None)

    # -- rules ---------------------------------------------------------------------------
    def window(self, s: Any, name: str, kernel: Sequence[int], stride: Sequence[int],
               pad_left: Sequence[int], pad_right: Sequence[int], dilation: Sequence[int],
               ceil_mode: bool = False) -> Any:
        if s is None or s == _GLOBAL:
            return s
        left, right, jump, length = [], [], [], None if s.length is None else []
        for i in range(self.n):
            span = dilation[i] * (kernel[i] - 1)
            left.append(s.left[i] - pad_left[i] * s.jump[i])
            right.append(s.right[i] + (span - pad_left[i]) * s.jump[i])
            jump.append(s.jump[i] * stride[i])
            if length is not None:
                padded = s.length[i] + pad_left[i] + pad_right[i] - span - 1
                out = (math.ceil if ceil_mode else math.floor)(padded / stride[i]) + 1
                if ceil_mode and (out - 1) * stride[i] >= s.length[i] + pad_left[i]:
                    out -= 1
                if padded < 0 or out < 1:
                    raise InputError(
                        f"input size {tuple(self.input_size or ())!r} is smaller than this "
                        f"network's minimum: layer {name!r} gets length {s.length[i]} in "
                        f"dimension {i} but its window spans {span + 1} (kernel {kernel[i]}, "
                        f"dilation {dilation[i]}, padding {pad_left[i]}+{pad_right[i]}); use a "
                        "larger input (see rf.min_input_size) or pad it")
                length.append(out)
        return _Span(left, right, jump, length)

    def merge(self, states: list[Any], name: str) -> Any:
        states = [s for s in states if s is not None]
        if not states:
            return None
        if any(s == _GLOBAL for s in states):
            return _GLOBAL
        first = states[0]
        for s in states[1:]:
            if s.jump != first.jump:
                raise UnsupportedError(
                    f"layer {name!r} combines tensors of different jumps {first.jump} and "
                    f"{s.jump} (e.g. an upsampled branch); their receptive fields do not align "
                    "position by position, so no single interval describes them")
        length = first.length
        if length is not None:
            length = [min(s.length[i] for s in states) for i in range(self.n)]
        return _Span([min(s.left[i] for s in states) for i in range(self.n)],
                     [max(s.right[i] for s in states) for i in range(self.n)], first.jump, length)

    def only_global(self, s: Any, name: str, what: str) -> Any:
        if s is None or s == _GLOBAL:
            return s
        raise UnsupportedError(
            f"layer {name!r} ({what}) mixes spatial positions of a non-global feature map in a "
            "way that has no exact interval rule; trace the part of the network before it (for "
            "example model.backbone) or pool globally first")

    # -- dispatch ------------------------------------------------------------------------
    def state(self, arg: Any) -> list[Any]:
        """States of every node inside a (nested) argument."""
        if isinstance(arg, fx.Node):
            return [self.env.get(arg)]
        if isinstance(arg, (tuple, list)):
            return [s for a in arg for s in self.state(a)]
        if isinstance(arg, dict):
            return [s for a in arg.values() for s in self.state(a)]
        return []

    def run(self, node: fx.Node) -> Any:
        if node.op == "placeholder":
            if node is not self.first:
                return None
            return _Span([0] * self.n, [0] * self.n, [1] * self.n, self.input_size)
        if node.op in ("get_attr", "output"):
            return None
        if node.op == "call_module":
            return self.call_module(node, self.modules[str(node.target)])
        if node.op == "call_function":
            return self.call_function(node)
        return self.call_method(node)

    def call_module(self, node: fx.Node, m: nn.Module) -> Any:
        name = str(node.target)
        x = self.env.get(node.args[0]) if node.args else None
        if isinstance(m, _CONVS):
            if m.padding_mode == "circular":
                raise UnsupportedError(f"layer {name!r} ({type(m).__name__}) pads "
                                            "circularly, which wraps the window around the edges")
            left, right = self.conv_padding(m.padding, m.kernel_size, m.dilation)
            return self.window(x, name, m.kernel_size, m.stride, left, right, m.dilation)
        if isinstance(m, _MAXPOOLS + _AVGPOOLS):
            k = _tuple(m.kernel_size, self.n)
            s = _tuple(m.stride or m.kernel_size, self.n)
            p = _tuple(m.padding, self.n)
            d = _tuple(getattr(m, "dilation", 1), self.n)
            return self.window(x, name, k, s, p, p, d, bool(m.ceil_mode))
        if isinstance(m, _ADAPTIVE):
            return self.adaptive(x, m.output_size, name, type(m).__name__)
        if isinstance(m, _POINTWISE):
            return x
        if isinstance(m, _GLOBAL_NORMS):
            return None if x is None else _GLOBAL
        if isinstance(m, _FLATTENERS):
            return self.only_global(x, name, type(m).__name__)
        raise UnsupportedError(
            f"layer {name!r} ({type(m).__name__}) has no receptive-field rule; supported: "
            "convolutions, max/avg pooling, global pooling, pointwise layers and their "
            "sequential, residual and concatenated compositions")

    def conv_padding(self, padding: Any, kernel: Sequence[int],
                     dilation: Sequence[int]) -> tuple[list[int], list[int]]:
        if padding == "valid":
            return [0] * self.n, [0] * self.n
        if padding == "same":
            total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            return [t // 2 for t in total], [t - t // 2 for t in total]
        p = _tuple(padding, self.n)
        return p, p

    def adaptive(self, x: Any, output_size: Any, name: str, what: str) -> Any:
        sizes = _tuple(output_size, self.n)
        if x is None or all(s == 1 for s in sizes):
            return None if x is None else _GLOBAL
        return self.only_global(x, name, f"{what} to {output_size!r}")

    def call_function(self, node: fx.Node) -> Any:
        fn, args, kwargs = node.target, node.args, node.kwargs
        name = node.name
        if getattr(fn, "_zoo_rf_passthrough", False):
            return self.env.get(args[0])
        if fn is builtins.getattr:
            return None
        if fn is operator.getitem:
            x = self.env.get(args[0])
            return self.only_global(x, name, "indexing") if x is not None else None
        if fn in _POINTWISE_FUNCS:
            return self.merge(self.state(list(args) + list(kwargs.values())), name)
        if fn in (torch.cat, torch.stack, torch.concat):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            states = self.state(args[0])
            if dim in (0, 1, -self.n - 2, -self.n - 1) or all(s in (None, _GLOBAL)
                                                                for s in states):
                return self.merge(states, name)
            return self.only_global(self.merge(states, name), name, f"concatenation on dim {dim}")
        if fn in _FUNCTIONAL_CONV:
            weight = self.fetch(args[1] if len(args) > 1 else kwargs["weight"])
            get = _args(args, kwargs, ["input", "weight", "bias", "stride", "padding", "dilation"])
            k = list(weight.shape[2:])
            d = _tuple(get("dilation", 1), self.n)
            left, right = self.conv_padding(get("padding", 0), k, d)
            return self.window(self.env.get(args[0]), name, k, _tuple(get("stride", 1), self.n),
                               left, right, d)
        if fn in _FUNCTIONAL_POOL:
            get = _args(args, kwargs, ["input", "kernel_size", "stride", "padding"])
            k = _tuple(get("kernel_size"), self.n)
            s = _tuple(get("stride", None) or k, self.n)
            p = _tuple(get("padding", 0), self.n)
            d = _tuple(kwargs.get("dilation", 1), self.n)
            return self.window(self.env.get(args[0]), name, k, s, p, p, d,
                               bool(kwargs.get("ceil_mode", False)))
        if fn in _FUNCTIONAL_ADAPTIVE:
            size = args[1] if len(args) > 1 else kwargs["output_size"]
            return self.adaptive(self.env.get(args[0]), size, name, fn.__name__)
        if fn is F.pad:
            return self.pad(node)
        if fn in (torch.mean, torch.sum, torch.amax, torch.amin):
            return self.reduce(self.env.get(args[0]), args[1:2] or [kwargs.get("dim")], name)
        if fn in (torch.flatten, F.interpolate, torch.reshape):
            return self.only_global(self.env.get(args[0]), name, getattr(fn, "__name__", ""))
        raise UnsupportedError(
            f"operation {name!r} ({getattr(fn, '__qualname__', fn)!r}) has no receptive-field "
            "rule; supported functions are convolution, pooling, padding, concatenation and "
            "pointwise arithmetic and activations")

    def call_method(self, node: fx.Node) -> Any:
        method, name = str(node.target), node.name
        x = self.env.get(node.args[0])
        if method in ("size", "dim"):
            return None
        if method in _POINTWISE_METHODS:
            return self.merge(self.state(list(node.args) + list(node.kwargs.values())), name)
        if method in _REDUCE_METHODS:
            return self.reduce(x, list(node.args[1:2]) or [node.kwargs.get("dim")], name)
        if method in _RESHAPE_METHODS:
            return self.only_global(x, name, f".{method}()")
        raise UnsupportedError(f"method call {name!r} (.{method}()) has no receptive-field "
                                    "rule; use convolution, pooling and pointwise operations")

    def reduce(self, x: Any, dims: list[Any], name: str) -> Any:
        dim = dims[0] if dims else None
        if x is None:
            return None
        spatial = set(range(2, 2 + self.n)) | set(range(-self.n, 0))
        picked = set(dim) if isinstance(dim, (tuple, list)) else {dim}
        if dim is None or picked & spatial:
            return _GLOBAL
        return x

    def pad(self, node: fx.Node) -> Any:
        get = _args(node.args, node.kwargs, ["input", "pad", "mode", "value"])
        x, pads = self.env.get(node.args[0]), list(get("pad"))
        if get("mode", "constant") == "circular":
            raise UnsupportedError(f"padding {node.name!r} is circular: windows wrap around")
        pads += [0] * (2 * self.n - len(pads))
        left = [pads[2 * (self.n - 1 - i)] for i in range(self.n)]  # F.pad lists the last dim first
        right = [pads[2 * (self.n - 1 - i) + 1] for i in range(self.n)]
        one = [1] * self.n
        return self.window(x, node.name, one, one, left, right, one)

    def fetch(self, node: Any) -> torch.Tensor:
        if not isinstance(node, fx.Node) or node.op != "get_attr":
            raise UnsupportedError(f"convolution weight {node!r} is computed, not a "
                                        "parameter; its kernel size cannot be read")
        obj: Any = self.gm
        for part in str(node.target).split("."):
            obj = getattr(obj, part)
        return obj  # type: ignore[no-any-return]

    def record(self, node: fx.Node, s: Any) -> None:
        if node.op != "call_module" or not isinstance(s, _Span | str):
            return
        if s == _GLOBAL:
            inf = (math.inf,) * self.n
            self.layers.append((str(node.target), inf, (0,) * self.n, (-math.inf,) * self.n))
        else:
            self.layers.append((str(node.target), _size(s), tuple(s.jump), tuple(s.left)))


def _args(args: Sequence[Any], kwargs: dict[str, Any], names: list[str]) -> Callable[..., Any]:
    def get(key: str, default: Any = None) -> Any:
        i = names.index(key)
        if i < len(args):
            return args[i]
        return kwargs.get(key, default)
    return get


def _size(s: _Span) -> tuple[float, ...]:
    return tuple(r - a + 1 for a, r in zip(s.left, s.right, strict=True))


def _infer_ndim(gm: fx.GraphModule) -> int | None:
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module":
            m = modules[str(node.target)]
            for n, types in ((1, (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d)),
                             (2, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)),
                             (3, (nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d))):
                if isinstance(m, types):
                    return n
        if node.op == "call_function":
            table = {**_FUNCTIONAL_CONV, **_FUNCTIONAL_POOL}
            if node.target in table:
                return table[node.target]
    return None
