"""DeepLabv3 and DeepLabv3+: a dilated ResNet, atrous spatial pyramid pooling, a classifier.

Chen, Papandreou, Schroff & Adam, "Rethinking Atrous Convolution for Semantic Image
Segmentation", arXiv:1706.05587 (DeepLabv3): the backbone runs at output stride 16 or 8; ASPP
(§3.3, :class:`~zoo_dilated.layers.aspp.ASPP`) with rates (6, 12, 18) at OS 16, doubled at
OS 8, reads its last feature map; a ``1 × 1`` classifier gives logits that are bilinearly
upsampled to the input size. Chen et al., "Encoder-Decoder with Atrous Separable Convolution",
ECCV 2018 (DeepLabv3+, ``decoder="plus"``): the ASPP output is upsampled to stride 4,
concatenated with 48 reduced low-level channels and refined by two ``3 × 3`` convolutions,
optionally depthwise-separable (``separable=True``).

With the defaults (``head_conv=True``: one ``3 × 3`` conv + BN + ReLU between ASPP and the
classifier, ``aux_loss``: an FCN head on stage 3) the module matches torchvision's
``deeplabv3_resnet50``, whose state dicts load through the ``torchvision`` layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo
from zoo_core import ConfigError

from .layers.aspp import ASPP
from .layers.conv_norm_act import ConvNormAct
from .layers.dilated_conv import check_rate
from .resnet import ARCHS, DilatedResNet, DilatedResNetConfig

_BASE_RATES = (6, 12, 18)  # at output stride 16 (DeepLabv3 §3.3)


@dataclass(frozen=True)
class DeepLabV3Config:
    """Config of :class:`DeepLabV3`.

    Attributes:
        backbone: ResNet arch (``resnet18`` … ``resnet152``, or ``resnet10``).
        width: backbone base width (64 in the paper).
        output_stride: 8 or 16 (32 for a strided, non-dilated baseline).
        block_rates: explicit rates of the backbone's last-stage blocks (multi-grid or HDC).
        num_classes: segmentation classes.
        in_chans: input channels.
        aspp_channels: channels of every ASPP branch and of the projection.
        aspp_rates: atrous rates; ``()`` scales (6, 12, 18) by ``16 / output_stride``.
        aspp_pooling: include the image-level branch.
        aspp_dropout: dropout after the ASPP projection.
        separable: depthwise-separable atrous convolutions in ASPP and decoder (v3+).
        head_conv: a ``3 × 3`` conv + BN + ReLU between ASPP and the classifier
            (torchvision's head; ignored with the v3+ decoder, which has its own).
        decoder: ``"none"`` (DeepLabv3) or ``"plus"`` (DeepLabv3+ decoder at stride 4).
        decoder_channels: channels of the decoder's ``3 × 3`` convolutions.
        low_level_channels: channels the decoder reduces stage-1 features to (48).
        aux_loss: an auxiliary FCN head on stage 3 (output ``aux_logits``).
    """

    backbone: str = "resnet50"
    width: int = 64
    output_stride: int = 8
    block_rates: tuple[int, ...] = ()
    num_classes: int = 21
    in_chans: int = 3
    aspp_channels: int = 256
    aspp_rates: tuple[int, ...] = ()
    aspp_pooling: bool = True
    aspp_dropout: float = 0.5
    separable: bool = False
    head_conv: bool = True
    decoder: str = "none"
    decoder_channels: int = 256
    low_level_channels: int = 48
    aux_loss: bool = False
    rates: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.backbone not in ARCHS:
            raise zoo.UnknownNameError(f"backbone={self.backbone!r} is not known; valid: "
                                       f"{list(ARCHS)}")
        if self.decoder not in ("none", "plus"):
            raise ConfigError(f"decoder={self.decoder!r} is not known; use 'none' "
                                "(DeepLabv3) or 'plus' (DeepLabv3+)")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes={self.num_classes!r} must be ≥ 1")
        if not 0.0 <= self.aspp_dropout < 1.0:
            raise ConfigError(f"aspp_dropout={self.aspp_dropout!r} must lie in [0, 1)")
        self.backbone_config()  # validates output_stride, width, block_rates
        rates = self.aspp_rates or tuple(max(1, r * 16 // self.output_stride)
                                         for r in _BASE_RATES)
        for i, r in enumerate(rates):
            check_rate(r, f"aspp_rates[{i}]")
        object.__setattr__(self, "rates", tuple(rates))

    def backbone_config(self) -> DilatedResNetConfig:
        return DilatedResNetConfig(self.backbone, self.width, self.output_stride,
                                   self.block_rates, num_classes=0, in_chans=self.in_chans)


class FCNHead(nn.Module):
    """Auxiliary head: ``3 × 3`` conv to ``C/4`` + BN + ReLU, dropout 0.1, ``1 × 1`` classifier."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.block = ConvNormAct(in_channels, in_channels // 4, 3)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Conv2d(in_channels // 4, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, h, w) -> (B, classes, h, w)
        return self.classifier(self.dropout(self.block(x)))


class Decoder(nn.Module):
    """DeepLabv3+ decoder: upsample ASPP features to the low-level stride, fuse, refine."""

    def __init__(self, in_channels: int, low_channels: int, reduced: int, channels: int,
                 separable: bool) -> None:
        super().__init__()
        self.reduce = ConvNormAct(low_channels, reduced, 1)
        self.fuse = nn.Sequential(
            ConvNormAct(in_channels + reduced, channels, 3, separable=separable),
            ConvNormAct(channels, channels, 3, separable=separable))

    def forward(self, x: Tensor, low: Tensor) -> Tensor:  # (B, C, h, w), (B, L, 4h', 4w')
        low = self.reduce(low)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, low], dim=1))  # (B, channels, H/4, W/4)


class DeepLabV3(zoo.Model):
    """DeepLabv3 / DeepLabv3+ semantic segmentation.

    Example:
        >>> model = zoo.create("model:deeplabv3", preset="resnet50", num_classes=21).eval()
        >>> model(torch.randn(1, 3, 513, 513))["logits"].shape
        torch.Size([1, 21, 513, 513])
    """

    config_class = DeepLabV3Config
    #: torchvision's deeplabv3_resnet50/101(num_classes=21, aux_loss=False); the output
    #: stride changes no weight shape
    parameter_counts: ClassVar[dict[str, int]] = {
        "resnet50": 39_638_869, "resnet50-os16": 39_638_869,
        "resnet101": 58_630_997, "resnet101-os16": 58_630_997}
    contract_opt_outs: ClassVar[dict[str, str]] = {
        "parameter_count": "DeepLabv3+ and 'small' have no published peer count"}
    presets: ClassVar[dict[str, DeepLabV3Config]] = {
        "tiny": DeepLabV3Config("resnet10", width=4, aspp_channels=8, num_classes=3,
                                aspp_rates=(1, 2, 3), aux_loss=True),
        "small": DeepLabV3Config("resnet18", width=16, aspp_channels=64, num_classes=6),
        "resnet50": DeepLabV3Config("resnet50"),
        "resnet50-os16": DeepLabV3Config("resnet50", output_stride=16),
        "resnet101": DeepLabV3Config("resnet101"),
        "resnet101-os16": DeepLabV3Config("resnet101", output_stride=16),
        "plus-resnet50": DeepLabV3Config("resnet50", output_stride=16, decoder="plus"),
        "plus-resnet101": DeepLabV3Config("resnet101", output_stride=16, decoder="plus"),
    }
    layouts: ClassVar[dict[str, list[tuple[str, str]]]] = {
        "torchvision": [
            (r"^classifier\.0\.convs\.([0-3])\.0\.", r"aspp.branches.\1.conv."),
            (r"^classifier\.0\.convs\.([0-3])\.1\.", r"aspp.branches.\1.bn."),
            (r"^classifier\.0\.convs\.4\.1\.", "aspp.pool.conv."),
            (r"^classifier\.0\.convs\.4\.2\.", "aspp.pool.bn."),
            (r"^classifier\.0\.project\.0\.", "aspp.project.conv."),
            (r"^classifier\.0\.project\.1\.", "aspp.project.bn."),
            (r"^classifier\.1\.", "head.conv."),
            (r"^classifier\.2\.", "head.bn."),
            (r"^classifier\.4\.", "classifier."),
            (r"^aux_classifier\.0\.", "aux_head.block.conv."),
            (r"^aux_classifier\.1\.", "aux_head.block.bn."),
            (r"^aux_classifier\.4\.", "aux_head.classifier."),
        ],
    }
    supports_grad_checkpointing = True

    def __init__(self, config: DeepLabV3Config) -> None:
        super().__init__(config)
        c = config
        self.backbone = DilatedResNet(c.backbone_config())
        feat = self.backbone.out_channels
        self.aspp = ASPP(feat, c.aspp_channels, c.rates, c.aspp_pooling, c.separable,
                         c.aspp_dropout)
        self.decoder = self.head = None
        if c.decoder == "plus":
            low = feat // 8  # stage-1 channels
            self.decoder = Decoder(c.aspp_channels, low, c.low_level_channels,
                                   c.decoder_channels, c.separable)
            out = c.decoder_channels
        else:
            self.head = ConvNormAct(c.aspp_channels, c.aspp_channels, 3) if c.head_conv else None
            out = c.aspp_channels
        self.classifier = nn.Conv2d(out, c.num_classes, 1)
        self.aux_head = FCNHead(feat // 2, c.num_classes) if c.aux_loss else None

    def forward(self, pixel_values: Tensor) -> dict[str, Tensor]:
        """(B, C, H, W) -> ``{"logits": (B, classes, H, W)}`` (+ ``"aux_logits"``)."""
        size = pixel_values.shape[-2:]
        stages = self.backbone.forward_stages(pixel_values)  # strides 4, 8, os, os
        x = self.aspp(stages[-1])  # (B, aspp_channels, H/os, W/os)
        if self.decoder is not None:
            x = self.decoder(x, stages[0])  # (B, decoder_channels, H/4, W/4)
        elif self.head is not None:
            x = self.head(x)
        out = {"logits": _upsample(self.classifier(x), size)}
        if self.aux_head is not None:
            out["aux_logits"] = _upsample(self.aux_head(stages[2]), size)
        return out

    def fuse_batchnorm(self) -> DeepLabV3:
        """Fold batch norm into the convolutions for inference (see ``layers.fuse``)."""
        from .layers.fuse import fuse_batchnorm

        fuse_batchnorm(self)
        return self

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return self.backbone.grad_checkpointing_blocks()

    def example_inputs(self) -> dict[str, Tensor]:
        return {"pixel_values": torch.randn(2, self.config.in_chans, 32, 32)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        c = self.config.in_chans
        return [{"pixel_values": torch.randn(2, c + 1, 32, 32)},       # wrong channel count
                {"pixel_values": torch.randn(c, 32, 32)},              # no batch dimension
                {"pixel_values": torch.zeros(2, c, 32, 32, dtype=torch.uint8)}]


def _upsample(x: Tensor, size: Any) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
