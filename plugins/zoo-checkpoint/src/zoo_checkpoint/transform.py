"""``transform:checkpoint``: gradient checkpointing policies for any ``nn.Module``.

Training keeps every forward activation that the backward pass needs; checkpointing drops a
chosen subset and recomputes it during the backward pass, trading compute for memory
(Chen et al., "Training Deep Nets with Sublinear Memory Cost", arXiv:1604.06174, 2016).
The unit is the model's repeated block: those a zoo model declares
(``grad_checkpointing_blocks()``), an ``nn.Sequential``'s children, a ``transformers`` model's
layer list (``BertModel.encoder.layer``), or blocks the caller names (:func:`find_blocks`).

Policies:
    ``"every"``: each block is its own checkpoint; keeps n block inputs, costs one extra
        forward of the blocks (what ``transformers``' ``gradient_checkpointing_enable()`` does).
    ``"every-k"``: segments of ``k`` consecutive blocks (default 2), each recomputed as a unit
        from its input (timm's ``checkpoint_seq(every=k)``): n/k inputs kept, one extra forward.
    ``"sqrt"``: Chen et al.'s rule, section 4.1: about sqrt(n) segments of sqrt(n) blocks, so
        O(sqrt(n)) inputs are kept and one segment is live at a time during the backward.
    ``"budget"``: given ``budget`` bytes (or ``fraction`` of the un-checkpointed saved bytes),
        pick per block none / selective / full so that the measured saved-activation bytes fit
        the budget at the least measured recompute time: a multiple-choice knapsack, solved
        exactly by dynamic programming over the bytes saved (``zoo_checkpoint.planner``).
        Profiles the model on ``inputs`` (default: ``model.example_inputs()``).
    ``"selective"``: every block keeps the outputs of matrix products, convolutions and fused
        attention and recomputes the element-wise ops (Korthikanti et al. 2022).
    ``"none"``: removes any checkpointing.

Example:
    >>> ckpt = zoo.create("transform:checkpoint", policy="sqrt")
    >>> model = ckpt.apply(zoo.create("model:bert", preset="base"))
    >>> model.set_grad_checkpointing("budget", fraction=0.3, inputs=batch)  # through the model
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

from torch import nn

import zoo_core as zoo
from zoo_core import ConfigError

from ._engine import SegmentGroup, unwrap, wrap

POLICIES = ("every", "every-k", "sqrt", "budget", "selective", "none")


_HOW = ("name them: Checkpoint(blocks=...) takes a list of the modules, or the path of a "
        "ModuleList such as 'encoder.layer'; or declare them on the model class: "
        "supports_grad_checkpointing = True and def grad_checkpointing_blocks(self): return "
        "list(self.layers)  (the repeated blocks, in forward order, each called as block(...))")


def find_blocks(model: nn.Module, blocks: str | Sequence[nn.Module] | None = None
                ) -> list[nn.Module]:
    """The blocks to checkpoint, in forward order, from the first source that has them:

    1. ``blocks``: the caller's modules, or the dotted path of a container in ``model``;
    2. the model's declaration (``supports_grad_checkpointing``, ``grad_checkpointing_blocks``);
    3. an ``nn.Sequential``: its children;
    4. any other module (a ``transformers`` model, say): its layer list, the ``ModuleList`` or
       ``Sequential`` of two or more modules of one class holding the most parameters
       (``BertModel.encoder.layer``, ``GPT2Model.h``, ``LlamaModel.layers``).
    """
    name = type(model).__name__
    if isinstance(blocks, str):
        try:
            found = list(model.get_submodule(blocks))
        except (AttributeError, TypeError):
            raise ConfigError(f"blocks={blocks!r} names no module list in {name}; {_HOW}") from None
    elif blocks is not None:
        found = list(blocks)
    elif getattr(model, "supports_grad_checkpointing", False) \
            and hasattr(model, "grad_checkpointing_blocks"):
        found = list(model.grad_checkpointing_blocks())
    elif isinstance(model, nn.Sequential):
        found = list(model)
    else:
        found = _layer_list(model)
    if not found:
        raise ConfigError(f"found no blocks to checkpoint in {name}; {_HOW}")
    bad = [b for b in found if not isinstance(b, nn.Module)]
    if bad:
        raise ConfigError(f"block {bad[0]!r} of {name} is not an nn.Module; {_HOW}")
    return found


def _layer_list(model: nn.Module) -> list[nn.Module]:
    """The container of same-class modules with the most parameters (ties: the shallowest)."""
    best: tuple[int, int, list[nn.Module]] = (0, 0, [])
    for path, module in model.named_modules():
        if not isinstance(module, (nn.ModuleList, nn.Sequential)) or len(module) < 2:
            continue
        kids = list(module)
        if len({type(k) for k in kids}) != 1:
            continue
        size = sum(p.numel() for p in module.parameters())
        depth = -path.count(".")
        if (size, depth) > best[:2]:
            best = (size, depth, kids)
    return best[2]


def segments(n: int, size: int) -> list[list[int]]:
    """Consecutive groups of ``size`` block indices (the last may be shorter)."""
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def sqrt_segment_size(n: int) -> int:
    """Chen et al.'s sqrt(n): round(sqrt(n)) segments of equal length (the last shorter)."""
    count = max(1, round(math.sqrt(n)))
    return math.ceil(n / count)


class Checkpoint(zoo.Transform):
    """Apply a gradient-checkpointing policy to a module's blocks, in place.

    Args:
        policy: one of ``POLICIES`` (see the module docstring).
        k: segment length of ``"every-k"``.
        budget: saved-activation budget in bytes for ``"budget"``.
        fraction: budget as a fraction of the un-checkpointed saved bytes (instead of bytes).
        inputs: keyword inputs the ``"budget"`` policy profiles the model on.
        blocks: the modules to checkpoint, or the dotted path of their container
            (``"encoder.layer"``); found by :func:`find_blocks` when omitted.
    """

    def __init__(self, policy: str | bool | None = "every", k: int = 2,
                 budget: int | None = None, fraction: float | None = None,
                 inputs: dict[str, Any] | None = None,
                 blocks: str | Sequence[nn.Module] | None = None) -> None:
        if policy is True:
            policy = "every"
        if policy is None or policy is False:
            policy = "none"
        if policy not in POLICIES:
            near = difflib.get_close_matches(str(policy), POLICIES, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"unknown checkpointing policy {policy!r}{hint}; valid policies: "
                              f"{', '.join(POLICIES)}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k={k!r} must be a positive int (blocks per every-k segment)")
        if policy == "budget":
            if (budget is None) == (fraction is None):
                raise ConfigError("policy='budget' takes exactly one of budget= (bytes of saved "
                                  f"activations) or fraction= (of the un-checkpointed bytes); got "
                                  f"budget={budget!r}, fraction={fraction!r}")
            if budget is not None and (not isinstance(budget, int) or budget < 0):
                raise ConfigError(f"budget={budget!r} must be a non-negative int number of bytes")
            if fraction is not None and not 0.0 <= float(fraction) <= 1.0:
                raise ConfigError(f"fraction={fraction!r} must lie in [0, 1]")
        self.policy, self.k, self.budget, self.fraction = policy, k, budget, fraction
        self.inputs = inputs
        self.blocks = blocks
        self.last_plan: Any = None

    def __repr__(self) -> str:
        return f"Checkpoint(policy={self.policy!r})"

    def plan(self, model: nn.Module, blocks: list[nn.Module]) -> list[str]:
        """The mode per block (``"none"``, ``"full"``, ``"selective"``, ``"segment"``)."""
        n = len(blocks)
        if self.policy == "none":
            return ["none"] * n
        if self.policy == "every":
            return ["full"] * n
        if self.policy == "selective":
            return ["selective"] * n
        if self.policy in ("every-k", "sqrt"):
            return ["segment"] * n
        from .planner import plan_budget
        from .profiler import profile_blocks

        inputs = self.inputs if self.inputs is not None else model.example_inputs()
        prof = profile_blocks(model, inputs, blocks)
        budget = self.budget if self.budget is not None \
            else int(float(self.fraction or 0.0) * prof.total_none)
        self.last_plan = plan_budget(prof, budget)
        return list(self.last_plan.modes)

    def apply(self, model: nn.Module, **options: Any) -> nn.Module:
        """Install the policy on ``model``'s blocks (replacing any earlier one); return it."""
        if options:
            return type(self)(**{**self._options(), **options}).apply(model)
        blocks = find_blocks(model, self.blocks)
        for block in blocks:
            unwrap(block)
        modes = self.plan(model, blocks)
        if self.policy in ("every-k", "sqrt"):
            size = self.k if self.policy == "every-k" else sqrt_segment_size(len(blocks))
            for seg in segments(len(blocks), size):
                group = SegmentGroup(len(seg))
                for pos, i in enumerate(seg):
                    wrap(blocks[i], "segment", group, pos)
        else:
            for block, mode in zip(blocks, modes, strict=True):
                if mode != "none":
                    wrap(block, mode)
        return model

    def _options(self) -> dict[str, Any]:
        return {"policy": self.policy, "k": self.k, "budget": self.budget,
                "fraction": self.fraction, "inputs": self.inputs, "blocks": self.blocks}

    @staticmethod
    def example_cases() -> list[tuple[nn.Module, dict[str, Any]]]:
        """Small models and inputs for the core's transform contract check."""
        from .example import ResidualMLP, ResidualMLPConfig

        cases = []
        for cfg in (ResidualMLPConfig(), ResidualMLPConfig(batchnorm=True, dropout=0.0)):
            model = ResidualMLP(cfg)
            cases.append((model, model.example_inputs()))
        return cases

    @staticmethod
    def bad_inputs() -> list[dict[str, Any]]:
        """``apply`` options the constructor refuses."""
        return [{"policy": "evry"}, {"policy": "every-k", "k": 0},
                {"policy": "budget"}, {"policy": "budget", "fraction": 1.5}]

    @classmethod
    def example(cls) -> Checkpoint:
        return cls(policy="every")
