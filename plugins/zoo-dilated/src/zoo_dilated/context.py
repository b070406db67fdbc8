"""Context aggregation module of Yu & Koltun, "Multi-Scale Context Aggregation by Dilated
Convolutions", ICLR 2016, §3.

Seven ``3 × 3`` convolutions with rates 1, 1, 2, 4, 8, 16, 1, each followed by the pointwise
truncation ``max(·, 0)``, then a ``1 × 1`` convolution; ``C`` feature maps in, ``C`` out, so
the module refines a front end's class scores at full resolution. Its receptive field grows
exponentially: 3, 5, 9, 17, 33, 65, 67 (Table 1). The basic module keeps ``C`` channels; the
large one widens them to (2, 2, 4, 8, 16, 32, 32) · C.

Identity initialisation (eq. 4): ``k^b(t, a) = 1[t = 0] 1[a = b]``; for the large module
(eq. 5) ``k^b(t, a) = C / c_{i+1}`` when ``t = 0`` and ``⌊aC / c_i⌋ = ⌊bC / c_{i+1}⌋``,
else ``ε ~ N(0, σ²)`` with ``σ ≪ C / c_{i+1}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.fx
from torch import Tensor, nn

import zoo_core as zoo
from zoo_core import ConfigError

from ._checks import check_image
from .layers.dilated_conv import check_rate

torch.fx.wrap("check_image")


@dataclass(frozen=True)
class ContextModuleConfig:
    """Config of :class:`ContextModule`.

    Attributes:
        num_classes: C, the channels in and out.
        rates: dilation of each ``3 × 3`` layer.
        width_multipliers: output channels of each ``3 × 3`` layer in units of C
            (``()``: all 1, the basic module).
        padding: ``"same"`` keeps the resolution; ``"valid"`` (no padding) needs inputs at
            least as large as the receptive field.
        init: ``"identity"`` (eq. 4/5) or ``"kaiming"``.
        init_std: σ of the large module's noise ε.
    """

    num_classes: int = 21
    rates: tuple[int, ...] = (1, 1, 2, 4, 8, 16, 1)
    width_multipliers: tuple[int, ...] = ()
    padding: str = "same"
    init: str = "identity"
    init_std: float = 1e-3

    def __post_init__(self) -> None:
        if not self.rates:
            raise ConfigError("rates=() is empty; the paper's module uses (1, 1, 2, 4, 8, 16, 1)")
        for i, r in enumerate(self.rates):
            check_rate(r, f"rates[{i}]")
        if self.width_multipliers and len(self.width_multipliers) != len(self.rates):
            raise ConfigError(f"width_multipliers={self.width_multipliers!r} needs one entry "
                                f"per rate ({len(self.rates)})")
        if self.padding not in ("same", "valid"):
            raise ConfigError(f"padding={self.padding!r}: use 'same' or 'valid'")
        if self.init not in ("identity", "kaiming"):
            raise ConfigError(f"init={self.init!r}: use 'identity' or 'kaiming'")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes={self.num_classes!r} must be ≥ 1")

    @property
    def receptive_field(self) -> int:
        """``1 + 2 Σ r`` for ``3 × 3`` layers."""
        return 1 + 2 * sum(self.rates)


class ContextModule(zoo.Model):
    """Multi-scale context aggregation by stacked dilated convolutions.

    Example:
        >>> ctx = zoo.create("model:context-module", preset="basic", num_classes=21)
        >>> ctx(torch.randn(1, 21, 64, 64)).shape
        torch.Size([1, 21, 64, 64])
    """

    config_class = ContextModuleConfig
    #: Yu & Koltun 2016, Table 1, C = 21 classes: seven 3×3 layers and a 1×1 one, with biases;
    #: basic: C → C throughout; large: C → 2C, 2C, 4C, 8C, 16C, 32C, 32C → C
    parameter_counts: ClassVar[dict[str, int]] = {
        "basic": 7 * (9 * 21 * 21 + 21) + 21 * 21 + 21,
        "large": 9 * 21 * 21 * (2 + 2 * 2 + 2 * 4 + 4 * 8 + 8 * 16 + 16 * 32 + 32 * 32)
        + 32 * 21 * 21 + 21 * (2 + 2 + 4 + 8 + 16 + 32 + 32 + 1)}
    presets: ClassVar[dict[str, ContextModuleConfig]] = {
        "tiny": ContextModuleConfig(num_classes=3, rates=(1, 2, 4, 1)),
        "basic": ContextModuleConfig(),
        "large": ContextModuleConfig(width_multipliers=(2, 2, 4, 8, 16, 32, 32)),
    }
    supports_grad_checkpointing = True

    def __init__(self, config: ContextModuleConfig) -> None:
        super().__init__(config)
        c = config.num_classes
        widths = [c * m for m in (config.width_multipliers or (1,) * len(config.rates))]
        self.layers = nn.ModuleList()
        for cin, cout, r in zip([c, *widths[:-1]], widths, config.rates, strict=True):
            pad = r if config.padding == "same" else 0
            self.layers.append(nn.Sequential(nn.Conv2d(cin, cout, 3, padding=pad, dilation=r),
                                             nn.ReLU(inplace=True)))
        self.output = nn.Conv2d(widths[-1], c, 1)
        self._init_weights([c, *widths, c])

    @torch.no_grad()
    def _init_weights(self, channels: list[int]) -> None:
        convs = [seq[0] for seq in self.layers] + [self.output]
        big_c = self.config.num_classes
        for conv, cin, cout in zip(convs, channels[:-1], channels[1:], strict=True):
            nn.init.zeros_(conv.bias)
            if self.config.init == "kaiming":
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                continue
            w = torch.randn_like(conv.weight) * self.config.init_std if cout != cin else \
                torch.zeros_like(conv.weight)
            a = torch.arange(cin)[None, :] * big_c // cin  # (1, cin)
            b = torch.arange(cout)[:, None] * big_c // cout  # (cout, 1)
            centre = (conv.kernel_size[0] // 2, conv.kernel_size[1] // 2)
            w[:, :, centre[0], centre[1]] = torch.where(a == b, big_c / cout, 0.0) + \
                (w[:, :, centre[0], centre[1]] if cout != cin else 0.0) * (a != b)
            conv.weight.copy_(w)

    def forward(self, scores: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H', W'); ``H' = H`` with "same" padding."""
        need = self.config.receptive_field if self.config.padding == "valid" else 1
        x = check_image(scores, self.config.num_classes, "ContextModule", need)
        for layer in self.layers:
            x = layer(x)
        return self.output(x)

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return list(self.layers)

    def example_inputs(self) -> dict[str, Tensor]:
        size = self.config.receptive_field + 4 if self.config.padding == "valid" else 24
        return {"scores": torch.randn(2, self.config.num_classes, size, size)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        scores = self.example_inputs()["scores"]
        return [{"scores": scores[:, :-1]},                 # one class map short
                {"scores": scores[0]},                      # no batch dimension
                {"scores": scores.long()}]                  # integer scores
