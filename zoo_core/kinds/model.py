"""``model``: an ``nn.Module`` built from a frozen dataclass config.

Example:
    >>> @dataclass(frozen=True)
    ... class MLPConfig:
    ...     width: int = 16
    >>> class MLP(Model):
    ...     config_class = MLPConfig
    ...     presets = {"tiny": MLPConfig(width=4)}
    ...     def __init__(self, config):
    ...         super().__init__(config)
    ...         self.fc = nn.Linear(config.width, config.width)
    ...     def forward(self, x):          # (B, width) -> (B, width)
    ...         return self.fc(x)
    ...     def example_inputs(self):
    ...         return {"x": torch.randn(2, self.config.width)}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from .._config import build_config, config_from_dict, config_to_dict
from .._errors import ZooError
from ._contract import not_declared


class Model(nn.Module):
    """Base class of zoo models.

    Class attributes a model declares:
        config_class: the frozen dataclass of its configuration.
        presets: named configurations (``zoo.create("model:x", preset="tiny")``).
        supports_grad_checkpointing: whether ``grad_checkpointing_blocks`` is implemented.
        attention_backends: attention implementations the config may select.
        layouts: foreign checkpoint layouts, each a list of ``(regex, replacement)`` rules
            mapping foreign keys to ours, applied in order (``re.sub``); a key a rule maps to
            ``""`` is dropped. Override :meth:`convert_state_dict` for what rules cannot say.
        parameter_counts: each preset's parameter count from an independent source (the
            paper's table, the peer implementation), checked by the contract's ``preset``
            check; a model without one opts out of ``"parameter_count"`` with the reason.
        contract_opt_outs: contract checks this model opts out of, each with the reason
            ``zoo check`` prints (see :mod:`zoo_core.kinds._contract`).
    """

    config_class: ClassVar[type]
    presets: ClassVar[Mapping[str, Any]] = {}
    supports_grad_checkpointing: ClassVar[bool] = False
    attention_backends: ClassVar[tuple[str, ...]] = ()
    layouts: ClassVar[Mapping[str, Sequence[tuple[str, str]]]] = {}
    parameter_counts: ClassVar[Mapping[str, int]] = {}
    contract_opt_outs: ClassVar[Mapping[str, str]] = {}

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ZooError(f"{type(self).__name__} takes a {self.config_class.__name__}, "
                           f"got {config!r}; use {type(self).__name__}.from_config(...)")
        self.config = config

    @classmethod
    def from_config(cls, preset: str | None = None, **overrides: Any) -> Model:
        """Random init from a preset (or the defaults) with fields overridden."""
        return cls(build_config(cls, preset, overrides))

    def example_inputs(self) -> dict[str, Any]:
        """Keyword arguments for a small forward pass (used by the contract checks)."""
        raise not_declared(self, "example_inputs", "forward")

    def bad_inputs(self) -> list[dict[str, Any]]:
        """Forward kwargs that must raise a ``ZooError`` (wrong shape, dtype, …)."""
        raise not_declared(self, "bad_inputs", "bad_inputs")

    # -- weights -------------------------------------------------------------------------
    def convert_state_dict(self, state_dict: dict[str, Any], layout: str) -> dict[str, Any]:
        """Map a foreign state dict (``layout``, e.g. ``"hf-bert"``) onto this model's keys."""
        if layout not in self.layouts:
            raise ZooError(f"{type(self).__name__} knows no weight layout {layout!r}; "
                           f"declared layouts: {sorted(self.layouts) or 'none'}")
        rules = [(re.compile(p), r) for p, r in self.layouts[layout]]
        out = {}
        for key, value in state_dict.items():
            for pattern, repl in rules:
                key = pattern.sub(repl, key)
            if key:
                out[key] = value
        return out

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` as a Hub repo folder."""
        from .._weights import save_model_dir

        return save_model_dir(self, Path(directory))

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str], **kwargs: Any) -> Model:
        """Load a catalogue entry, ``hf:org/repo@rev``, ``dir:/path`` or a plain folder."""
        from .._loading import load

        text = str(name_or_path)
        if os.path.isdir(text):
            text = f"dir:{text}"
        model = load(text, **kwargs)
        if not isinstance(model, cls):
            raise ZooError(f"{text!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def config_dict(self) -> dict[str, Any]:
        return config_to_dict(self.config)

    @classmethod
    def config_from_json(cls, text: str) -> Any:
        return config_from_dict(cls.config_class, json.loads(text))

    # -- gradient checkpointing ------------------------------------------------------------
    def grad_checkpointing_blocks(self) -> Sequence[nn.Module]:
        """The blocks that checkpointing policies may recompute, in forward order."""
        raise ZooError(
            f"{type(self).__name__} declares no checkpointing blocks: set "
            "supports_grad_checkpointing = True and return its repeated blocks (for instance "
            "self.encoder.layers) from grad_checkpointing_blocks()"
        )

    def set_grad_checkpointing(self, policy: str | bool | None = "every", **options: Any) -> Model:
        """Apply ``transform:checkpoint`` with ``policy`` (``False``/``None`` switches it off)."""
        from .._api import create

        if not self.supports_grad_checkpointing:
            self.grad_checkpointing_blocks()  # raises with the how-to
        if policy is True:
            policy = "every"
        transform = create("transform:checkpoint", policy=policy or "none", **options)
        return transform.apply(self)  # type: ignore[no-any-return]
