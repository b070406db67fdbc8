"""The face chain: detect (MTCNN) → align (five landmarks onto the ArcFace template) → embed.

Example:
    >>> chain = FacePipeline("mtcnn", recognizer="dir:/models/my-iresnet")
    >>> faces = chain([Image.open("a.jpg"), Image.open("b.jpg")])   # one list per image
    >>> faces[0][0].box, faces[0][0].crop.shape, faces[0][0].embedding.shape
    (tensor([174.4, 119.6, 355.6, 340.5]), torch.Size([3, 112, 112]), torch.Size([512]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo

from .align import template, umeyama, warp_affine
from .images import to_tensors


@dataclass
class Face:
    """One detected face.

    Attributes:
        box: (4,) ``x1, y1, x2, y2`` in pixels.
        score: () detector probability.
        landmarks: (5, 2) eyes, nose, mouth corners (x, y).
        crop: (3, 112, 112) the face aligned onto the template, values 0…255.
        embedding: (E,) unit-norm embedding, when the chain has a recognizer.
    """

    box: Tensor
    score: Tensor
    landmarks: Tensor
    crop: Tensor
    embedding: Tensor | None = None


def aligned_crops(image: Tensor, landmarks: Tensor, size: int = 112,
                  template_name: str = "112x112") -> Tensor:
    """Crops (N, 3, size, size) of one image (3, H, W) aligned by landmarks (N, 5, 2); the
    template is scaled to ``size``."""
    (h, w), points = template(template_name)
    if landmarks.shape[0] == 0:
        return image.new_zeros(0, image.shape[0], size, size)
    if h != w:
        raise zoo.ConfigError(f"template {template_name!r} is not square; use '112x112'")
    matrices = umeyama(landmarks.double(), points * (size / w))
    return warp_affine(image[None].expand(landmarks.shape[0], -1, -1, -1), matrices,
                       (size, size))


class FacePipeline:
    """Detector, alignment and, optionally, a recognition model, run as one call.

    Args:
        detector: an MTCNN model or the name of its catalogue entry.
        recognizer: a recognition model (images in [−1, 1] → embeddings), a catalogue entry
            name, ``dir:/path`` or ``hf:org/repo@rev``; ``None`` skips embeddings.
        template: alignment template of the crops.
    """

    def __init__(self, detector: Any = "mtcnn", recognizer: Any = None,
                 template: str = "112x112") -> None:
        self.detector = zoo.load(detector) if isinstance(detector, str) else detector
        if isinstance(recognizer, str):
            recognizer = zoo.load(recognizer)
        if recognizer is not None and not isinstance(recognizer, nn.Module):
            raise zoo.ConfigError(f"recognizer {recognizer!r} is not a model")
        self.recognizer = recognizer
        self.template = template

    @torch.inference_mode()
    def __call__(self, images: Any) -> list[list[Face]]:
        param = next(self.detector.parameters())
        tensors = to_tensors(images, param.device, param.dtype)
        from .detect import detect

        out = []
        for image, found in zip(tensors, detect(self.detector, tensors), strict=True):
            crops = aligned_crops(image, found.landmarks, 112, self.template)
            embeddings = self.embed_aligned(image, found.landmarks)
            out.append([Face(found.boxes[i], found.scores[i], found.landmarks[i], crops[i],
                             None if embeddings is None else embeddings[i])
                        for i in range(len(found))])
        return out

    def embed_aligned(self, image: Tensor, landmarks: Tensor) -> Tensor | None:
        """Unit-norm embeddings (N, E) of the faces of one image, aligned at the recognizer's
        input size and scaled to [−1, 1]; ``None`` without a recognizer."""
        if self.recognizer is None or landmarks.shape[0] == 0:
            return None
        size = getattr(getattr(self.recognizer, "config", None), "input_size", 112)
        crops = aligned_crops(image, landmarks, size, self.template)
        param = next(self.recognizer.parameters())
        x = (crops / 127.5 - 1.0).to(device=param.device, dtype=param.dtype)
        return F.normalize(self.recognizer.eval()(x).float(), dim=1)
