"""Dilated ResNet: ResNet-18/34/50/101/152 whose last stages trade stride for dilation.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (blocks
``y = relu(x + F(x))``); Yu, Koltun & Funkhouser, "Dilated Residual Networks", CVPR 2017, and
Chen et al., DeepLabv3 (arXiv:1706.05587) §3.2: replacing the stride-2 of stage ``i`` by
dilation multiplies the dilation of every later ``3 × 3`` convolution by 2, keeping the
receptive field while the output stride falls from 32 to 16 (stage 4 dilated) or 8 (stages 3
and 4 dilated). As in the common implementation, the first block of a dilated stage keeps the
previous rate. ``block_rates`` sets the last stage's rates explicitly: DeepLabv3 multi-grid
(unit rates × stage rate, e.g. (2, 4, 8)) or an HDC sawtooth such as (1, 2, 5).

Keys follow torchvision's ResNet, so its state dicts load unchanged (layout ``torchvision``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.fx
from torch import Tensor, nn

import zoo_core as zoo
from zoo_core import ConfigError

from ._checks import check_image
from .layers.dilated_conv import check_rate

torch.fx.wrap("check_image")

ARCHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet10": ("basic", (1, 1, 1, 1)),
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
_DILATE = {32: (False, False, False), 16: (False, False, True), 8: (False, True, True)}


@dataclass(frozen=True)
class DilatedResNetConfig:
    """Config of :class:`DilatedResNet`.

    Attributes:
        arch: ``resnet10``/``18``/``34`` (basic blocks) or ``resnet50``/``101``/``152``.
        width: channels of the stem and first stage (64 in the paper); stage ``i`` has
            ``width · 2^i`` (× 4 after a bottleneck).
        output_stride: 32 (plain), 16 or 8 (stride replaced by dilation in the last stages).
        block_rates: explicit dilation of each last-stage block (``()``: from the stride).
        num_classes: classifier outputs; 0 drops pooling and classifier (dense features).
        in_chans: input channels.
        zero_init_residual: start each residual branch at zero (last BN weight 0).
    """

    arch: str = "resnet50"
    width: int = 64
    output_stride: int = 32
    block_rates: tuple[int, ...] = ()
    num_classes: int = 1000
    in_chans: int = 3
    zero_init_residual: bool = False
    block: str = field(init=False)
    layers: tuple[int, ...] = field(init=False)
    dilate: tuple[bool, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise zoo.UnknownNameError(f"arch={self.arch!r} is not known; valid: {list(ARCHS)}")
        if self.output_stride not in _DILATE:
            raise ConfigError(f"output_stride={self.output_stride!r} is not supported; use "
                                "32 (no dilation), 16 or 8")
        block, layers = ARCHS[self.arch]
        if self.block_rates:
            for i, r in enumerate(self.block_rates):
                check_rate(r, f"block_rates[{i}]")
            if len(self.block_rates) != layers[3]:
                raise ConfigError(f"block_rates={self.block_rates!r} has "
                                    f"{len(self.block_rates)} rates but {self.arch} has "
                                    f"{layers[3]} blocks in its last stage")
        for name in ("width", "in_chans"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be ≥ 1")
        if self.num_classes < 0:
            raise ConfigError(f"num_classes={self.num_classes!r} must be ≥ 0 (0: features)")
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "dilate", _DILATE[self.output_stride])


class BasicBlock(nn.Module):
    """Two ``3 × 3`` convolutions; ``y = relu(x + bn2(conv2(relu(bn1(conv1(x))))))``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, rate: int = 1,
                 downsample: nn.Module | None = None, first_rate: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=first_rate,
                               dilation=first_rate, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=rate, dilation=rate, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C', H/s, W/s)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """``1 × 1`` reduce → ``3 × 3`` (stride, dilation) → ``1 × 1`` expand (× 4), residual."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, rate: int = 1,
                 downsample: nn.Module | None = None, first_rate: int = 1) -> None:
        super().__init__()
        del first_rate  # a bottleneck has a single 3 × 3 convolution
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=rate, dilation=rate,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, 4P, H/s, W/s)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class DilatedResNet(zoo.Model):
    """ResNet with output stride 32, 16 or 8.

    Example:
        >>> net = zoo.create("model:dilated-resnet", preset="resnet50-os8", num_classes=0)
        >>> net(torch.randn(1, 3, 224, 224)).shape      # dense features at stride 8
        torch.Size([1, 2048, 28, 28])
    """

    config_class = DilatedResNetConfig
    #: torchvision's resnet18…152 with the ImageNet head (published with its weights);
    #: dilation changes no weight shape, so every output stride has the same count
    parameter_counts: ClassVar[dict[str, int]] = {
        f"resnet{depth}{stride}": count
        for depth, count in ((18, 11_689_512), (34, 21_797_672), (50, 25_557_032),
                             (101, 44_549_160), (152, 60_192_808))
        for stride in ("", "-os16", "-os8")}
    presets: ClassVar[dict[str, DilatedResNetConfig]] = {
        "tiny": DilatedResNetConfig("resnet10", width=4, output_stride=8, num_classes=5),
        **{f"{a}{s}": DilatedResNetConfig(a, output_stride=os)
           for a in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
           for s, os in (("", 32), ("-os16", 16), ("-os8", 8))},
    }
    layouts: ClassVar[dict[str, list[tuple[str, str]]]] = {"torchvision": []}
    supports_grad_checkpointing = True

    def __init__(self, config: DilatedResNetConfig) -> None:
        super().__init__(config)
        c = config
        self.conv1 = nn.Conv2d(c.in_chans, c.width, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c.width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        block: Any = BasicBlock if c.block == "basic" else Bottleneck
        self.inplanes, self.rate = c.width, 1
        self.layer1 = self._stage(block, c.width, c.layers[0], 1, False)
        self.layer2 = self._stage(block, c.width * 2, c.layers[1], 2, c.dilate[0])
        self.layer3 = self._stage(block, c.width * 4, c.layers[2], 2, c.dilate[1])
        self.layer4 = self._stage(block, c.width * 8, c.layers[3], 2, c.dilate[2],
                                  c.block_rates)
        self.out_channels = c.width * 8 * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1) if c.num_classes else None
        self.fc = nn.Linear(self.out_channels, c.num_classes) if c.num_classes else None
        self._init_weights()

    def _stage(self, block: Any, planes: int, blocks: int, stride: int, dilate: bool,
               rates: tuple[int, ...] = ()) -> nn.Sequential:
        previous = self.rate
        if dilate:
            self.rate, stride = self.rate * stride, 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        rates = rates or (previous,) + (self.rate,) * (blocks - 1)
        layers = [block(self.inplanes, planes, stride, rates[0], downsample, first_rate=rates[0])]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, rate=r, first_rate=r) for r in rates[1:]]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.config.zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    last = m.bn3 if isinstance(m, Bottleneck) else m.bn2
                    nn.init.zeros_(last.weight)

    def forward_stages(self, pixel_values: Tensor) -> list[Tensor]:
        """Outputs of the four stages, at strides 4, 8, 16, 32 (or dilated: 8 or 16 at most)."""
        x = check_image(pixel_values, self.config.in_chans, "DilatedResNet")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, width, H/4, W/4)
        outs = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            outs.append(x)
        return outs

    def forward(self, pixel_values: Tensor) -> Tensor:
        """(B, C, H, W) -> logits (B, num_classes), or features (B, C', H/os, W/os) when
        ``num_classes == 0``."""
        x = self.forward_stages(pixel_values)[-1]
        if self.fc is None or self.avgpool is None:
            return x
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)

    def convert_state_dict(self, state_dict: dict[str, Any], layout: str) -> dict[str, Any]:
        """torchvision keys are ours; a classifier-free model drops ``fc.*``."""
        state = super().convert_state_dict(state_dict, layout)
        if self.fc is None:
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        return state

    def fuse_batchnorm(self) -> DilatedResNet:
        """Fold batch norm into the convolutions for inference (see ``layers.fuse``)."""
        from .layers.fuse import fuse_batchnorm

        fuse_batchnorm(self)
        return self

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return [b for stage in (self.layer1, self.layer2, self.layer3, self.layer4)
                for b in stage]

    def example_inputs(self) -> dict[str, Tensor]:
        return {"pixel_values": torch.randn(2, self.config.in_chans, 32, 32)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        c = self.config.in_chans
        return [{"pixel_values": torch.randn(2, c + 1, 32, 32)},       # wrong channel count
                {"pixel_values": torch.randn(c, 32, 32)},              # no batch dimension
                {"pixel_values": torch.zeros(2, c, 32, 32, dtype=torch.uint8)}]
