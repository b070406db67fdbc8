"""zoo-face: margin-based softmax losses, Partial FC, face alignment, backbones, verification.

Components are reached through the registry (``zoo.create("loss:arcface", ...)``); the
functions below are importable directly.
"""

from ._errors import FaceInputError

__all__ = ["FaceInputError"]
