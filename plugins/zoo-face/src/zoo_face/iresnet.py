"""IResNet: the face-recognition ResNet of ArcFace ("IR" blocks, BN-Dropout-FC-BN head).

Deng et al., 2019, "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
§3.2 "Network settings": a ResNet whose residual unit is BN → conv3×3 → BN → PReLU →
conv3×3(stride) → BN (the improved residual unit), a 3×3 stride-1 stem for 112×112 crops, and
the embedding head "BN-Dropout-FC-BN" (option E): the last 7×7×512 feature map is
batch-normalised, dropped out, fully connected to a 512-d embedding and batch-normalised again
(the last BN's scale fixed at 1). Depths 18/34/50/100 use (2,2,2,2), (3,4,6,3), (3,4,14,3),
(3,13,30,3) units per stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

import zoo_core as zoo

from .images import bad_crops, check_crops


@dataclass(frozen=True)
class IResNetConfig:
    """IResNet hyper-parameters.

    Attributes:
        layers: residual units per stage (each stage halves the resolution).
        widths: channels per stage.
        stem_width: channels of the 3×3 stem.
        in_channels: image channels.
        input_size: side of the square input crop.
        embedding_size: width of the embedding.
        dropout: dropout probability in the head.
        zero_init_residual: start every residual branch at zero (its last BN scale = 0).
        threshold: cosine at or above which two faces are the same person, calibrated on
            verification pairs (set by training code; ``None``: not calibrated).
        feature_size: side of the last feature map (derived).
    """

    layers: tuple[int, ...] = (3, 4, 14, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem_width: int = 64
    in_channels: int = 3
    input_size: int = 112
    embedding_size: int = 512
    dropout: float = 0.0
    zero_init_residual: bool = False
    threshold: float | None = None
    feature_size: int = field(init=False)

    def __post_init__(self) -> None:
        if len(self.layers) != len(self.widths) or not self.layers:
            raise zoo.ConfigError(f"layers={self.layers!r} and widths={self.widths!r} must be "
                                 "non-empty and of equal length (one entry per stage)")
        if self.input_size % 2 ** len(self.layers):
            raise zoo.ConfigError(f"input_size={self.input_size!r} must be divisible by "
                                 f"{2 ** len(self.layers)} (one halving per stage)")
        if not 0 <= self.dropout < 1:
            raise zoo.ConfigError(f"dropout={self.dropout!r} must lie in [0, 1)")
        object.__setattr__(self, "feature_size", self.input_size // 2 ** len(self.layers))


def _ir(layers: tuple[int, ...]) -> IResNetConfig:
    return IResNetConfig(layers=layers)


class IBasicBlock(nn.Module):
    """BN → conv3×3 → BN → PReLU → conv3×3(stride) → BN, plus the (projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in, eps=1e-5)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, eps=1e-5)
        self.prelu = nn.PReLU(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out, eps=1e-5)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                            nn.BatchNorm2d(c_out, eps=1e-5))

    def forward(self, x: Tensor) -> Tensor:                                  # (B, C, H, W)
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut                                               # (B, C', H/s, W/s)


class IResNet(zoo.Model):
    """IResNet face backbone: (B, 3, 112, 112) images → (B, 512) embeddings.

    Example:
        >>> net = zoo.create("model:iresnet", preset="iresnet50")
        >>> net(torch.randn(2, 3, 112, 112)).shape
        torch.Size([2, 512])
    """

    config_class = IResNetConfig
    contract_opt_outs = {"parameter_count": "insightface publishes rounded counts (65.2 M, "
                         "43.6 M): tests/test_backbones.py checks them to that rounding"}
    presets = {
        "iresnet18": _ir((2, 2, 2, 2)), "iresnet34": _ir((3, 4, 6, 3)),
        "iresnet50": _ir((3, 4, 14, 3)), "iresnet100": _ir((3, 13, 30, 3)),
        "tiny": IResNetConfig(layers=(1, 1, 1, 1), widths=(8, 8, 16, 16), stem_width=8,
                              input_size=16, embedding_size=16),
    }
    supports_grad_checkpointing = True
    layouts = {  # the key names of insightface's arcface_torch IResNet checkpoints
        "insightface": [(rf"^layer{i + 1}\.", f"stages.{i}.") for i in range(4)],
    }

    def __init__(self, config: IResNetConfig) -> None:
        super().__init__(config)
        c = config
        self.conv1 = nn.Conv2d(c.in_channels, c.stem_width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c.stem_width, eps=1e-5)
        self.prelu = nn.PReLU(c.stem_width)
        stages, c_in = [], c.stem_width
        for n, width in zip(c.layers, c.widths, strict=True):
            blocks = [IBasicBlock(c_in, width, 2)]
            blocks += [IBasicBlock(width, width, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.bn2 = nn.BatchNorm2d(c_in, eps=1e-5)
        self.dropout = nn.Dropout(c.dropout)
        self.fc = nn.Linear(c_in * c.feature_size**2, c.embedding_size)
        self.features = nn.BatchNorm1d(c.embedding_size, eps=1e-5)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.25, mode="fan_out",
                                        nonlinearity="leaky_relu")
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad_(False)
        if self.config.zero_init_residual:
            for block in self.grad_checkpointing_blocks():
                nn.init.zeros_(block.bn3.weight)

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return [block for stage in self.stages for block in stage]

    def forward(self, images: Tensor) -> Tensor:
        """Embeddings (B, E) of aligned crops (B, C, S, S)."""
        check_crops(images, self.config.in_channels, self.config.input_size)
        x = self.prelu(self.bn1(self.conv1(images)))                        # (B, C0, S, S)
        for stage in self.stages:
            x = stage(x)                                                    # (B, Ci, S/2^i, ·)
        x = self.dropout(self.bn2(x)).flatten(1)                            # (B, C·f·f)
        return self.features(self.fc(x))                                    # (B, E)

    def example_inputs(self) -> dict[str, Tensor]:
        c = self.config
        return {"images": torch.randn(2, c.in_channels, c.input_size, c.input_size)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        return bad_crops(self.config.in_channels, self.config.input_size)
