"""zoo.read_safetensors maps a file (copy-on-write views): the tensors equal the safetensors
library's, writing to them leaves the file alone, and a header the library would refuse
(sizes, gaps, overlaps, truncation) is a WeightsError naming the file."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import zoo_core as zoo


def _raw(path: Path, header: dict, data: bytes, pad: int = 0) -> Path:
    text = json.dumps(header).encode() + b" " * pad
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def test_tensors_equal_the_librarys_and_the_file_stays(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    tensors = {"f32": torch.randn(3, 5, generator=g), "f16": torch.randn(7, generator=g).half(),
               "bf16": torch.randn(2, 2, generator=g).bfloat16(),
               "f64": torch.randn(4, generator=g).double(), "i64": torch.arange(6).view(2, 3),
               "u8": torch.arange(5, dtype=torch.uint8), "flag": torch.tensor([True, False]),
               "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3)}
    path = tmp_path / "w.safetensors"
    save_file(tensors, str(path))
    before = path.read_bytes()
    want, got = load_file(str(path)), zoo.read_safetensors(path)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape
        assert torch.equal(got[k], want[k])
    got["f32"].add_(1.0)
    assert path.read_bytes() == before
    assert torch.equal(zoo.read_safetensors(path)["f32"], want["f32"])


def test_an_unaligned_tensor_is_read_correctly(tmp_path: Path) -> None:
    values = torch.tensor([1.5, -2.0, 3.25])
    data = b"\x07" + values.numpy().tobytes()  # one byte first: the floats start unaligned
    path = _raw(tmp_path / "w.safetensors",
                {"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                 "b": {"dtype": "F32", "shape": [3], "data_offsets": [1, 13]}}, data)
    state = zoo.read_safetensors(path)
    assert torch.equal(state["b"], values) and state["a"].tolist() == [7]
    assert torch.equal(load_file(str(path))["b"], values)


@pytest.mark.parametrize("header, data, match", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4, "takes 4 bytes"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b"\0" * 12, "starts at"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "starts at"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 6, "truncated"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 9, "file at"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "invalid"),
    ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, b"\0" * 4, "invalid"),
    ({"a": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "invalid"),
])
def test_bad_headers_are_weights_errors(tmp_path: Path, header: dict, data: bytes,
                                        match: str) -> None:
    path = _raw(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(Exception):  # noqa: B017 - the library refuses it too
        load_file(str(path))
    with pytest.raises(zoo.WeightsError, match=f"'bad.safetensors'.*{match}"):
        zoo.read_safetensors(path)


@pytest.mark.parametrize("data", [b"", b"\x80\x04\x95junk", b"PK\x03\x04zip",
                                  struct.pack("<Q", 1 << 40) + b"{}"])
def test_no_safetensors_is_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    with pytest.raises(zoo.WeightsError, match="pickle|not a safetensors"):
        zoo.read_safetensors(path)
