"""Errors of zoo-dilated: each names the bad value, what is valid, and the fix."""

from __future__ import annotations

from zoo_core import ZooError


class DilationError(ZooError, ValueError):
    """A rate, kernel size, padding or input size that the layer or network cannot take."""


class UnsupportedLayerError(ZooError, TypeError):
    """A layer the receptive-field tracer has no exact rule for."""
