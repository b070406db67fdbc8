"""DeepFace: a face representation learnt by a 4,030-way softmax over locally connected layers.

Taigman, Yang, Ranzato and Wolf, 2014, "DeepFace: Closing the Gap to Human-Level Performance
in Face Verification" (CVPR), Section 3 and Fig. 2: a 3D-aligned 152×152 RGB crop goes
through C1 (32 filters 11×11), M2 (3×3 max-pooling, stride 2), C3 (16 filters 9×9), three
locally connected layers L4 (16 × 9×9), L5 (16 × 7×7, stride 2), L6 (16 × 5×5), each
position with its own filters, then F7, the 4,096-d representation; F8, the 4,030-way
softmax over identities, is the classification loss (``loss:softmax`` or a margin loss).
ReLU after every layer but the last; C3's filters read the 32 channels of M2.

The model built holds C1 to F7: 102,412,864 parameters (102.4 M). F8, the 4,030 class
centres of 4,096 values (16.5 M more), lives in the loss (``loss:softmax``'s weight and
bias), so the two make 118.9 M, which the paper rounds up to "more than 120 million".

The 3D frontalisation is not part of the network; feed crops aligned by
:mod:`zoo_face.align`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

import zoo_core as zoo

from .images import bad_crops, check_crops
from .local import LocallyConnected2d


@dataclass(frozen=True)
class DeepFaceConfig:
    """DeepFace sizes (defaults: the paper's).

    Attributes:
        input_size: side of the square input crop.
        in_channels: image channels.
        widths: filters of C1, C3, L4, L5, L6.
        kernels: kernel sides of C1, C3, L4, L5, L6.
        embedding_size: F7, the representation.
        dropout: dropout before F7 (the paper uses it on F7 only).
        threshold: calibrated cosine threshold for verification (``None``: not calibrated).
        map_sizes: input sides of C3, L4, L5, L6 and F7 (derived).
    """

    input_size: int = 152
    in_channels: int = 3
    widths: tuple[int, int, int, int, int] = (32, 16, 16, 16, 16)
    kernels: tuple[int, int, int, int, int] = (11, 9, 9, 7, 5)
    embedding_size: int = 4096
    dropout: float = 0.0
    threshold: float | None = None
    map_sizes: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.widths) != 5 or len(self.kernels) != 5:
            raise zoo.ConfigError(f"widths={self.widths!r} and kernels={self.kernels!r} need "
                                  "five entries each (C1, C3, L4, L5, L6)")
        k1, k3, k4, k5, k6 = self.kernels
        s = self.input_size - k1 + 1                    # C1
        s = -(-(s - 3) // 2) + 1                        # M2: 3×3, stride 2, ceil
        sizes = [s]
        for k, stride in ((k3, 1), (k4, 1), (k5, 2), (k6, 1)):
            s = (s - k) // stride + 1
            sizes.append(s)
        if min(sizes) < 1:
            raise zoo.ConfigError(f"input_size={self.input_size!r} is too small for kernels "
                                  f"{self.kernels!r} (map sides {sizes!r})")
        object.__setattr__(self, "map_sizes", tuple(sizes))


class DeepFace(zoo.Model):
    """DeepFace trunk: (B, 3, 152, 152) aligned crops → (B, 4096) F7 features.

    Example:
        >>> net = zoo.create("model:deepface")
        >>> sum(p.numel() for p in net.parameters())          # F8 (4,030-way) excluded
        102412864
    """

    config_class = DeepFaceConfig
    #: the paper's layer table, C1 to F7 (k²·in·out + out per conv, that per position for
    #: the locally connected layers): F8 is the loss's class centres, not counted here
    parameter_counts = {"deepface": (11 * 11 * 3 * 32 + 32) + (9 * 9 * 32 * 16 + 16)
                        + 55 * 55 * (9 * 9 * 16 * 16 + 16) + 25 * 25 * (7 * 7 * 16 * 16 + 16)
                        + 21 * 21 * (5 * 5 * 16 * 16 + 16) + (21 * 21 * 16 * 4096 + 4096)}
    presets = {
        "deepface": DeepFaceConfig(),
        "tiny": DeepFaceConfig(input_size=32, widths=(8, 8, 8, 8, 8), kernels=(5, 3, 3, 3, 3),
                               embedding_size=32),
    }

    def __init__(self, config: DeepFaceConfig) -> None:
        super().__init__(config)
        c = config
        w1, w3, w4, w5, w6 = c.widths
        k1, k3, k4, k5, k6 = c.kernels
        s3, s4, s5, s6, s7 = c.map_sizes
        self.c1 = nn.Conv2d(c.in_channels, w1, k1)
        self.m2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.c3 = nn.Conv2d(w1, w3, k3)
        self.l4 = LocallyConnected2d(w3, w4, k4, (s4, s4))
        self.l5 = LocallyConnected2d(w4, w5, k5, (s5, s5), stride=2)
        self.l6 = LocallyConnected2d(w5, w6, k6, (s6, s6))
        self.dropout = nn.Dropout(c.dropout)
        self.f7 = nn.Linear(w6 * s7 * s7, c.embedding_size)

    def forward(self, images: Tensor) -> Tensor:
        """F7 features (B, E) of aligned crops (B, C, S, S)."""
        check_crops(images, self.config.in_channels, self.config.input_size)
        x = self.m2(torch.relu(self.c1(images)))                    # (B, 32, 71, 71)
        x = torch.relu(self.c3(x))                                  # (B, 16, 63, 63)
        x = torch.relu(self.l4(x))                                  # (B, 16, 55, 55)
        x = torch.relu(self.l5(x))                                  # (B, 16, 25, 25)
        x = torch.relu(self.l6(x))                                  # (B, 16, 21, 21)
        return self.f7(self.dropout(x.flatten(1)))                  # (B, 4096)

    def example_inputs(self) -> dict[str, Tensor]:
        c = self.config
        return {"images": torch.randn(2, c.in_channels, c.input_size, c.input_size)}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        return bad_crops(self.config.in_channels, self.config.input_size)
