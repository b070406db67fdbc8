"""DeepID: a 160-d identity feature that sees both the third and the fourth convolution.

Sun, Wang and Tang, 2014, "Deep Learning Face Representation from Predicting 10,000 Classes"
(CVPR), Fig. 2: a face patch (39×31×k, or 31×31×k for square patches) goes through four
convolutions with ReLU, max-pooling (2×2) after the first three; the third layer's weights
are shared only within 2×2 blocks of positions, the fourth's not at all (locally connected).
The DeepID layer is fully connected to both pool3 and conv4 (the multi-scale feature):
``y = relu(W₁ x₃ + W₂ x₄ + b)``; the 10,000-way softmax over identities is the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo

from .images import bad_crops, check_crops
from .local import LocallyConnected2d


@dataclass(frozen=True)
class DeepIDConfig:
    """DeepID sizes (defaults: the paper's, on a 31×31 square patch).

    Attributes:
        input_size: side of the square patch.
        in_channels: 3 (RGB) or 1 (grey).
        widths: maps of conv1–conv4.
        kernels: kernel sides of conv1–conv4.
        share: conv3's weights are shared within share × share blocks of positions.
        embedding_size: the DeepID layer.
        threshold: calibrated cosine threshold for verification (``None``: not calibrated).
        map_sizes: sides of conv3's input, pool3's output and conv4's output (derived).
    """

    input_size: int = 31
    in_channels: int = 3
    widths: tuple[int, int, int, int] = (20, 40, 60, 80)
    kernels: tuple[int, int, int, int] = (4, 3, 3, 2)
    share: int = 2
    embedding_size: int = 160
    threshold: float | None = None
    map_sizes: tuple[int, int, int] = field(init=False)

    def __post_init__(self) -> None:
        k1, k2, k3, k4 = self.kernels
        s2 = (self.input_size - k1 + 1) // 2
        s3 = (s2 - k2 + 1) // 2
        p3 = (s3 - k3 + 1) // 2
        s4 = p3 - k4 + 1
        if min(s2, s3, p3, s4) < 1:
            raise zoo.ConfigError(f"input_size={self.input_size!r} is too small for kernels "
                                  f"{self.kernels!r}")
        object.__setattr__(self, "map_sizes", (s3, p3, s4))


class DeepID(zoo.Model):
    """DeepID trunk: (B, k, 31, 31) patches → (B, 160) DeepID features.

    Example:
        >>> net = zoo.create("model:deepid")
        >>> net(torch.randn(2, 3, 31, 31)).shape
        torch.Size([2, 160])
    """

    config_class = DeepIDConfig
    contract_opt_outs = {"parameter_count": "Sun et al. 2014 publish no parameter count"}
    presets = {"deepid": DeepIDConfig(),
               "tiny": DeepIDConfig(input_size=32, widths=(4, 8, 8, 8), embedding_size=16)}

    def __init__(self, config: DeepIDConfig) -> None:
        super().__init__(config)
        c = config
        w1, w2, w3, w4 = c.widths
        k1, k2, k3, k4 = c.kernels
        s3, p3, s4 = c.map_sizes
        self.conv1 = nn.Conv2d(c.in_channels, w1, k1)
        self.conv2 = nn.Conv2d(w1, w2, k2)
        self.conv3 = LocallyConnected2d(w2, w3, k3, (s3, s3), share=c.share)
        self.conv4 = LocallyConnected2d(w3, w4, k4, (p3, p3))
        self.from_pool3 = nn.Linear(w3 * p3 * p3, c.embedding_size)
        self.from_conv4 = nn.Linear(w4 * s4 * s4, c.embedding_size, bias=False)

    def forward(self, images: Tensor) -> Tensor:
        """DeepID features (B, E) of patches (B, k, S, S)."""
        check_crops(images, self.config.in_channels, self.config.input_size)
        x = F.max_pool2d(torch.relu(self.conv1(images)), 2)        # (B, 20, 14, 14)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)             # (B, 40, 6, 6)
        pool3 = F.max_pool2d(torch.relu(self.conv3(x)), 2)         # (B, 60, 2, 2)
        conv4 = torch.relu(self.conv4(pool3))                      # (B, 80, 1, 1)
        return torch.relu(self.from_pool3(pool3.flatten(1)) + self.from_conv4(conv4.flatten(1)))

    def example_inputs(self) -> dict[str, Tensor]:
        c = self.config
        return {"images": torch.randn(2, c.in_channels, c.input_size, c.input_size)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        return bad_crops(self.config.in_channels, self.config.input_size)
