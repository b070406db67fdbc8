"""MTCNN: joint face detection and five-point alignment with three cascaded CNNs.

Zhang, Zhang, Li and Qiao, 2016, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks" (IEEE SPL 23(10)), Fig. 2: P-Net (fully convolutional, 12×12 window,
stride 2) proposes windows over an image pyramid; R-Net (24×24) rejects and refines them; O-Net
(48×48) refines again and places five landmarks (eyes, nose tip, mouth corners). Each net has
a face/non-face softmax and a box regression head ``(dx1, dy1, dx2, dy2)`` in units of the
window's size; candidates are merged by non-maximum suppression after every stage.

The pipeline (pyramid, thresholds, NMS, regression, squaring, crops) is in
:mod:`zoo_face.detect`; this module holds the networks. Weights: the published ones (converted
from the authors' Caffe models and shipped by facenet-pytorch), loaded through the
``"facenet-pytorch"`` layout.

Example:
    >>> mtcnn = zoo.load("mtcnn")
    >>> faces = mtcnn.detect(Image.open("group.jpg"))[0]
    >>> faces.boxes.shape, faces.scores.shape, faces.landmarks.shape
    (torch.Size([4, 4]), torch.Size([4]), torch.Size([4, 5, 2]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

import zoo_core as zoo

from .images import check_crops


@dataclass(frozen=True)
class MTCNNConfig:
    """Detection settings (the networks themselves have no free sizes).

    Attributes:
        min_face: smallest face side in pixels; the pyramid's first scale is 12 / min_face.
        factor: scale ratio between pyramid levels.
        thresholds: face probability a window needs to pass P-Net, R-Net and O-Net
            (P-Net keeps ``>=``, the others ``>``, as the reference implementation does).
        nms: IoU thresholds of the NMS within one pyramid level, across levels, after R-Net,
            and the intersection-over-smaller-area threshold after O-Net.
        tile_pixels: P-Net runs on horizontal strips of at most about this many pixels, so
            memory stays bounded on large photos (results do not depend on it).
        batch: R-Net / O-Net windows per forward call.
    """

    min_face: float = 20.0
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    nms: tuple[float, float, float, float] = (0.5, 0.7, 0.7, 0.7)
    tile_pixels: int = 1_000_000
    batch: int = 4096

    def __post_init__(self) -> None:
        if not self.min_face >= 12:
            raise zoo.ConfigError(f"min_face={self.min_face!r} must be at least 12 (P-Net's "
                                  "window); smaller faces: upscale the image")
        if not 0.0 < self.factor < 1.0:
            raise zoo.ConfigError(f"factor={self.factor!r} must lie in (0, 1), e.g. 0.709")
        if len(self.thresholds) != 3 or len(self.nms) != 4:
            raise zoo.ConfigError(f"thresholds={self.thresholds!r} needs 3 values and "
                                  f"nms={self.nms!r} needs 4")
        if self.tile_pixels < 10_000 or self.batch < 1:
            raise zoo.ConfigError(f"tile_pixels={self.tile_pixels!r} must be >= 10000 and "
                                  f"batch={self.batch!r} >= 1")


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k), nn.PReLU(cout)]


def _pool(k: int) -> nn.MaxPool2d:
    return nn.MaxPool2d(k, 2, ceil_mode=True)


class PNet(nn.Module):
    """Proposal net: 12×12 window → face logits (B, 2, h, w) and box offsets (B, 4, h, w)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*_conv(3, 10, 3), _pool(2), *_conv(10, 16, 3),
                                      *_conv(16, 32, 3))
        self.score = nn.Conv2d(32, 2, 1)
        self.box = nn.Conv2d(32, 4, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)                              # (B, 32, (H-10)/2, (W-10)/2)
        return self.score(h), self.box(h)


class RNet(nn.Module):
    """Refinement net: (N, 3, 24, 24) → face logits (N, 2), box offsets (N, 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*_conv(3, 28, 3), _pool(3), *_conv(28, 48, 3), _pool(3),
                                      *_conv(48, 64, 2), nn.Flatten(), nn.Linear(576, 128),
                                      nn.PReLU(128))
        self.score = nn.Linear(128, 2)
        self.box = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)                              # (N, 128)
        return self.score(h), self.box(h)


class ONet(nn.Module):
    """Output net: (N, 3, 48, 48) → face logits (N, 2), box offsets (N, 4), landmarks (N, 10)
    (five x then five y, in units of the window)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*_conv(3, 32, 3), _pool(3), *_conv(32, 64, 3), _pool(3),
                                      *_conv(64, 64, 3), _pool(2), *_conv(64, 128, 2),
                                      nn.Flatten(), nn.Linear(1152, 256), nn.PReLU(256))
        self.score = nn.Linear(256, 2)
        self.box = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.features(x)                              # (N, 256)
        return self.score(h), self.box(h), self.landmarks(h)


def _rules(net: str, names: dict[str, str]) -> list[tuple[str, str]]:
    return [(rf"^{net}\.{old}\.", f"{net}.{new}.") for old, new in names.items()]


# facenet-pytorch's MTCNN.state_dict() keys (pnet.conv1.weight, …) onto ours
_FACENET = (
    _rules("pnet", {"conv1": "features.0", "prelu1": "features.1", "conv2": "features.3",
                    "prelu2": "features.4", "conv3": "features.5", "prelu3": "features.6",
                    "conv4_1": "score", "conv4_2": "box"})
    + _rules("rnet", {"conv1": "features.0", "prelu1": "features.1", "conv2": "features.3",
                      "prelu2": "features.4", "conv3": "features.6", "prelu3": "features.7",
                      "dense4": "features.9", "prelu4": "features.10", "dense5_1": "score",
                      "dense5_2": "box"})
    + _rules("onet", {"conv1": "features.0", "prelu1": "features.1", "conv2": "features.3",
                      "prelu2": "features.4", "conv3": "features.6", "prelu3": "features.7",
                      "conv4": "features.9", "prelu4": "features.10", "dense5": "features.12",
                      "prelu5": "features.13", "dense6_1": "score", "dense6_2": "box",
                      "dense6_3": "landmarks"})
)
# their first dense layers read the conv map flattened as (W, H, C) (Caffe's order); ours read
# (C, H, W): (out, W·H·C) columns → (out, C·H·W)
_FLATTENED = {"rnet.features.9.weight": (3, 3, 64), "onet.features.12.weight": (3, 3, 128)}


@dataclass
class Faces:
    """Detections in one image, by decreasing score.

    Attributes:
        boxes: (N, 4) ``x1, y1, x2, y2`` in pixels (not clipped to the image).
        scores: (N,) O-Net face probabilities.
        landmarks: (N, 5, 2) ``(x, y)`` of left eye, right eye, nose, mouth left, mouth right.
    """

    boxes: Tensor
    scores: Tensor
    landmarks: Tensor

    def __len__(self) -> int:
        return self.boxes.shape[0]


class MTCNN(zoo.Model):
    """P-Net, R-Net and O-Net, and :meth:`detect`, the cascade over whole images.

    ``forward`` runs each net on windows of its own size (what training and the contract
    checks need); :meth:`detect` is the detector.
    """

    config_class = MTCNNConfig
    parameter_counts = {"default": 495_850}  # facenet-pytorch's MTCNN: P-, R- and O-Net
    presets = {"default": MTCNNConfig()}
    layouts = {"facenet-pytorch": _FACENET}

    def __init__(self, config: MTCNNConfig) -> None:
        super().__init__(config)
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()

    def forward(self, windows12: Tensor, windows24: Tensor | None = None,
                windows48: Tensor | None = None) -> dict[str, Tensor]:
        """Each net on normalised windows ((x − 127.5) / 128): logits, offsets, landmarks."""
        if windows24 is None or windows48 is None:  # mtcnn(img), as facenet-pytorch is called
            raise zoo.InputError(
                f"MTCNN's forward runs its three nets on windows (windows12, windows24, "
                f"windows48); it got one {type(windows12).__name__}. For the faces in an image "
                "call mtcnn.detect(img) (boxes, scores, landmarks), and for aligned crops "
                "zoo_face.pipeline.FacePipeline(mtcnn)(img)")
        for size, windows in ((12, windows12), (24, windows24), (48, windows48)):
            check_crops(windows, 3, size, name=f"windows{size}")
        p_score, p_box = self.pnet(windows12)
        r_score, r_box = self.rnet(windows24)
        o_score, o_box, o_marks = self.onet(windows48)
        return {"pnet_logits": p_score.flatten(1), "pnet_boxes": p_box.flatten(1),
                "rnet_logits": r_score, "rnet_boxes": r_box, "onet_logits": o_score,
                "onet_boxes": o_box, "onet_landmarks": o_marks}

    def example_inputs(self) -> dict[str, Any]:
        g = torch.Generator().manual_seed(0)
        return {f"windows{s}": torch.randn(2, 3, s, s, generator=g) for s in (12, 24, 48)}

    def bad_inputs(self) -> list[dict[str, Any]]:
        good = self.example_inputs()
        return [{**good, "windows24": torch.randn(2, 3, 12, 12)},      # R-Net takes 24x24
                {**good, "windows48": torch.randn(2, 1, 48, 48)},      # grey, not RGB
                {**good, "windows12": torch.zeros(2, 3, 12, 12, dtype=torch.uint8)}]

    def convert_state_dict(self, state_dict: dict[str, Any], layout: str) -> dict[str, Any]:
        out = super().convert_state_dict(state_dict, layout)
        for key, (w, h, c) in _FLATTENED.items():
            if key in out:
                weight = out[key]
                out[key] = weight.reshape(-1, w, h, c).permute(0, 3, 2, 1).reshape(
                    weight.shape[0], -1)
        return out

    @torch.inference_mode()
    def detect(self, images: Any) -> list[Faces]:
        """Faces in each image: boxes, scores and five landmarks.

        Args:
            images: a PIL image, a uint8 (H, W, 3) array, a (3, H, W) tensor, or a list of
                them (sizes may differ). See :mod:`zoo_face.images` for what else is accepted.

        Returns:
            One :class:`Faces` per image, empty where no face is found.
        """
        from .detect import detect
        from .images import to_tensors

        param = next(self.parameters())
        return detect(self, to_tensors(images, param.device, None))
