"""``zoo plugin new NAME --kind KIND``: a complete plugin distribution, ready to install.

It writes ``zoo-NAME/`` holding a ``pyproject.toml`` (``[build-system]``, ``[project]``, the
``zoo`` entry point), a light entry module ``src/zoo_NAME/plugin.py`` (no torch import), one
working component of the chosen kind, a test running the contract checks, and a README.
``uv pip install ./zoo-NAME`` then ``zoo check NAME`` passes as generated.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._errors import InputError
from ._files import atomic_write
from ._registry import KINDS

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")

_PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "zoo-NAME"
version = "0.1.0"
description = "SUMMARY"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["zoo-core"]

[project.optional-dependencies]
test = ["pytest>=8"]

# how zoo finds the plugin: group "zoo", plugin name = entry module
[project.entry-points.zoo]
NAME = "PKG.plugin"

[tool.setuptools.packages.find]
where = ["src"]
'''

_PLUGIN = '''"""Entry module of zoo-NAME: light (imports no torch), registers components by import
string."""

from zoo_core import component, hookimpl


@hookimpl
def zoo_components():
    return [
        component("KIND:NAME", "PKG.MODULE:CLASS", summary="SUMMARY", tags=["NAME"]),
    ]
'''

_TEST = '''"""The contract checks zoo runs on every component (``zoo check NAME`` does the same)."""

from zoo_core.testing import parametrize_components


@parametrize_components(plugin="NAME")
def test_contract(zoo_case):
    zoo_case.run()
'''

_README = '''# zoo-NAME

SUMMARY: the `KIND:NAME` component for [zoo](https://pypi.org/project/zoo-core/).

```bash
uv pip install -e .          # or: pip install -e .
zoo info KIND:NAME           # its presets and config fields
zoo check NAME               # the contract checks
```

```python
import zoo_core as zoo
obj = zoo.create("KIND:NAME")
```
'''

# One working component per kind: module name, class name, summary, source.
_COMPONENTS: dict[str, tuple[str, str, str, str]] = {
    "model": ("mlp", "MLP", "a two-layer perceptron", '''\
"""A two-layer perceptron: y = W2 · gelu(W1 · x + b1) + b2."""

from dataclasses import dataclass

import torch
from torch import Tensor, nn

import zoo_core as zoo


@dataclass(frozen=True)
class MLPConfig:
    """Configs are frozen dataclasses of plain values; they round-trip through config.json."""

    in_features: int = 16
    hidden: int = 64
    out_features: int = 4


class MLP(zoo.Model):
    config_class = MLPConfig
    presets = {"tiny": MLPConfig(4, 8, 2), "base": MLPConfig()}  # name -> config

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)  # checks the type and sets self.config
        self.fc1 = nn.Linear(config.in_features, config.hidden)
        self.fc2 = nn.Linear(config.hidden, config.out_features)

    def forward(self, x: Tensor) -> Tensor:  # (B, in) -> (B, out)
        return self.fc2(nn.functional.gelu(self.fc1(x)))

    def example_inputs(self) -> dict[str, Tensor]:
        """Keyword arguments of a small forward pass, for the contract checks."""
        return {"x": torch.randn(3, self.config.in_features)}
'''),
    "tokenizer": ("bytes_tokenizer", "ByteTokenizer", "UTF-8 bytes as token ids", '''\
"""A byte-level tokenizer: each UTF-8 byte is one id (0-255), then the special tokens."""

import json
import os
from pathlib import Path

import zoo_core as zoo

_FILE = "byte_tokenizer.json"


class ByteTokenizer(zoo.Tokenizer):
    def __init__(self, special_tokens: tuple[str, ...] = ("<|endoftext|>",)) -> None:
        self.specials = {t: 256 + i for i, t in enumerate(special_tokens)}

    def encode(self, text: str, **options: object) -> list[int]:
        if options:
            raise TypeError(f"encode() got unexpected keyword arguments {sorted(options)}")
        return list(text.encode("utf-8"))

    def decode(self, ids, **options: object) -> str:
        by_id = {i: t for t, i in self.specials.items()}
        out, run = [], bytearray()
        for i in ids:
            if i in by_id:
                out.append(run.decode("utf-8", "replace") + by_id[i])
                run = bytearray()
            elif 0 <= i < 256:
                run.append(i)
            else:
                raise zoo.InputError(f"id {i!r} is out of range; valid: 0..{self.vocab_size - 1}")
        return "".join(out) + run.decode("utf-8", "replace")

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.specials)

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self.specials)

    def save(self, directory: str | os.PathLike[str]) -> list[str]:
        zoo.atomic_write(Path(directory) / _FILE,
                         json.dumps({"special_tokens": list(self.specials)}))
        return [_FILE]

    @classmethod
    def load(cls, directory: str | os.PathLike[str], **options: object) -> "ByteTokenizer":
        doc = json.loads((Path(directory) / _FILE).read_text("utf-8"))
        return cls(tuple(doc["special_tokens"]))
'''),
    "loss": ("hinge", "SquaredHinge", "squared multi-class hinge loss", '''\
"""Squared multi-class hinge: mean over i of sum over j != y_i of max(0, 1 - s_y + s_j)^2."""

import torch
from torch import Tensor

import zoo_core as zoo


class SquaredHinge(zoo.Loss):
    presets = {"tiny": {"num_classes": 3}}  # name -> constructor keyword arguments

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # (B, C), (B,) -> ()
        margins = (1 - input.gather(1, target[:, None]) + input).clamp(min=0) ** 2
        mask = torch.ones_like(margins).scatter_(1, target[:, None], 0)
        return (margins * mask).sum(1).mean()

    def example_inputs(self) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(0)
        scores = torch.randn(5, self.num_classes, generator=g).requires_grad_()
        return scores, torch.randint(0, self.num_classes, (5,), generator=g)
'''),
    "metric": ("accuracy", "Accuracy", "streaming top-1 accuracy", '''\
"""Top-1 accuracy, streamed: its state is two counts that add up across batches and ranks."""

import torch
from torch import Tensor

import zoo_core as zoo


class Accuracy(zoo.Metric):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        # add_state(name, default): a tensor summed by merge(), sync() and __call__
        self.add_state("correct", torch.zeros((), dtype=torch.long))
        self.add_state("total", torch.zeros((), dtype=torch.long))

    def update(self, preds: Tensor, target: Tensor) -> None:  # (B, C) scores or (B,) labels
        labels = preds.argmax(-1) if preds.dim() > target.dim() else preds
        self.correct += (labels == target).sum()
        self.total += target.numel()

    def compute(self) -> dict[str, Tensor]:
        return {"accuracy": self.correct / self.total.clamp(min=1)}

    def example_batches(self) -> list[tuple[Tensor, Tensor]]:
        """At least two (preds, target) batches, for the streaming and merge checks."""
        g = torch.Generator().manual_seed(0)
        return [(torch.randn(6, self.num_classes, generator=g),
                 torch.randint(0, self.num_classes, (6,), generator=g)) for _ in range(3)]
'''),
    "kernel": ("scale", "Scale", "x * s, the smallest kernel", '''\
"""``scale(x, s) = x * s``: one op, a reference, and a backend chosen per call."""

import torch
from torch import Tensor

import zoo_core as zoo


class Scale(zoo.Kernel):
    name = "scale"

    def __init__(self) -> None:
        self.backends = {  # fastest first; each says which calls it supports
            "torch": zoo.Backend("torch", torch.mul,
                                 supports=lambda x, s: x.is_floating_point() or "floats only"),
        }

    def reference(self, x: Tensor, s: float) -> Tensor:
        return x * s

    def example_calls(self) -> list[tuple[tuple, dict]]:
        return [((torch.randn(4, 3), 2.0), {}), ((torch.randn(5), -0.5), {})]
'''),
    "transform": ("freeze", "Freeze", "freeze every parameter", '''\
"""Freeze a model: its parameters stop requiring gradients; outputs are unchanged."""

import torch
from torch import nn

import zoo_core as zoo


class Freeze(zoo.Transform):
    def apply(self, model: nn.Module, **options: object) -> nn.Module:
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def example_cases(self) -> list[tuple[nn.Module, dict]]:
        """(model, forward keyword arguments) pairs the contract check runs before and after."""
        torch.manual_seed(0)
        return [(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), {"input": torch.randn(2, 4)})]
'''),
}


def write_plugin(name: str, kind: str = "model", directory: str | Path = ".") -> Path:
    """Write ``<directory>/zoo-<name>``; return it. Refuses to overwrite an existing folder."""
    if not _NAME.match(name):
        raise InputError(f"plugin name {name!r} must be lowercase letters and digits, words "
                         "joined by '-' or '_' (e.g. 'mlp' or 'my-losses')")
    if kind not in KINDS:
        raise InputError(f"kind {kind!r} is unknown; valid kinds: {', '.join(KINDS)}")
    root = Path(directory) / f"zoo-{name}"
    if root.exists():
        raise InputError(f"{str(root)!r} already exists; choose another name or --directory")
    pkg = "zoo_" + name.replace("-", "_")
    module, cls, summary, source = _COMPONENTS[kind]

    def fill(text: str) -> str:
        for key, value in (("PKG", pkg), ("NAME", name), ("KIND", kind), ("MODULE", module),
                           ("CLASS", cls), ("SUMMARY", summary)):
            text = text.replace(key, value)
        return text

    files = {
        "pyproject.toml": fill(_PYPROJECT),
        "README.md": fill(_README),
        f"src/{pkg}/__init__.py": f'"""zoo-{name}: {summary}."""\n',
        f"src/{pkg}/plugin.py": fill(_PLUGIN),
        f"src/{pkg}/{module}.py": source,
        f"tests/test_{pkg}.py": fill(_TEST),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    return root
