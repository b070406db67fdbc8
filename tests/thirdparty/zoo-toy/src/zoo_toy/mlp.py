"""A two-layer perceptron, y = W2 · gelu(W1 · x + b1) + b2, and a squared-hinge loss."""

from dataclasses import dataclass

import torch
from torch import Tensor, nn

import zoo_core as zoo


@dataclass(frozen=True)
class MLPConfig:
    in_features: int = 8
    hidden: int = 32
    out_features: int = 4


class MLP(zoo.Model):
    config_class = MLPConfig
    presets = {"tiny": MLPConfig(4, 8, 2), "small": MLPConfig()}
    # y = W2 gelu(W1 x + b1) + b2: in·hidden + hidden + hidden·out + out
    parameter_counts = {"small": 8 * 32 + 32 + 32 * 4 + 4}

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        self.fc1 = nn.Linear(config.in_features, config.hidden)
        self.fc2 = nn.Linear(config.hidden, config.out_features)

    def forward(self, x: Tensor) -> Tensor:  # (B, in) -> (B, out)
        zoo.checks.tensor(x, "x", dtype="float", shape=(None, self.config.in_features))
        return self.fc2(nn.functional.gelu(self.fc1(x)))

    def example_inputs(self) -> dict[str, Tensor]:
        return {"x": torch.randn(3, self.config.in_features)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        return [{"x": torch.randn(self.config.in_features)}, {"x": torch.ones(3, 1)}]


class SquaredHinge(zoo.Loss):
    """mean over i, j≠y_i of max(0, 1 − s_{y_i} + s_j)²."""

    contract_opt_outs = {"bad_inputs": "a toy: it trusts its caller"}

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        margins = (1 - input.gather(1, target[:, None]) + input).clamp(min=0) ** 2
        mask = torch.ones_like(margins).scatter_(1, target[:, None], 0)
        return (margins * mask).sum(1).mean()

    def example_inputs(self) -> tuple[Tensor, Tensor]:
        return torch.randn(5, self.num_classes, requires_grad=True), torch.tensor([0, 1, 2, 0, 1])
