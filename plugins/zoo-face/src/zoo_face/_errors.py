"""Errors of zoo-face."""

from __future__ import annotations

from zoo_core import ZooError


class FaceInputError(ZooError, ValueError):
    """Bad input to a zoo-face component: the message names the value, what is valid, the fix."""
