"""Validation of user inputs shared by the models: clear errors, never ``assert``."""

from __future__ import annotations

import torch
from torch import Tensor

from zoo_core import ZooError


class InputError(ZooError, ValueError):
    """A model input out of range or of the wrong shape."""


def check_ids(ids: Tensor, vocab_size: int, what: str = "input_ids") -> None:
    """Ids must be integers in ``[0, vocab_size)`` of shape (B, S)."""
    if ids.dim() != 2 or ids.is_floating_point():
        raise InputError(f"{what} must be an integer tensor of shape (batch, seq), got "
                         f"{ids.dtype} of shape {tuple(ids.shape)}")
    if ids.numel():
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= vocab_size:
            bad = hi if hi >= vocab_size else lo
            raise InputError(f"{what} holds token id {bad!r}, outside [0, {vocab_size}) of the "
                             "model's vocabulary; use the tokenizer that matches the model")


def check_length(length: int, limit: int, what: str = "input_ids") -> None:
    if length > limit:
        raise InputError(f"{what} has sequence length {length!r}, more than the model's "
                         f"{limit} positions; truncate (tokenizer truncation=True, "
                         f"max_length={limit})")


def check_mask(mask: Tensor | None, ids: Tensor, what: str = "attention_mask") -> Tensor | None:
    """A (B, S) 0/1 or bool mask → bool, True = attend."""
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(ids.shape):
        raise InputError(f"{what} has shape {tuple(mask.shape)!r} but the ids have shape "
                         f"{tuple(ids.shape)}; pass one mask entry per token (1 = attend)")
    return mask.to(torch.bool)
