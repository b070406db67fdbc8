"""Validation of model inputs with ``zoo.checks``: shapes and dtypes always, values only with
the debug switch.

Shape and dtype checks read tensor metadata and cost nothing. Value checks (every id inside
the vocabulary) must ask the device for a number, which stalls a GPU and breaks a
``torch.compile`` graph, so forward passes skip them unless ``ZOO_DEBUG=1`` is set (see
``zoo.checks.debug``). Ids from the entry's own tokenizer are in range by construction;
:meth:`BertForSentenceEmbedding.encode` checks the tokenizer's vocabulary against the
model's once, on the host.
"""

from __future__ import annotations

import torch
from torch import Tensor

import zoo_core as zoo
from zoo_core import InputError


def check_ids(ids: Tensor, vocab_size: int, what: str = "input_ids") -> None:
    """Ids must be integers of shape (B, S); with debug checks on, in ``[0, vocab_size)``."""
    zoo.checks.tensor(ids, what, ndim=2, dtype="integer",
                      fix="pass token ids of shape (batch, seq), e.g. from the tokenizer")
    zoo.checks.in_range(ids, what, 0, vocab_size,
                        fix="use the tokenizer that matches the model's vocabulary")


def check_length(length: int, limit: int, what: str = "input_ids") -> None:
    if length > limit:
        raise InputError(f"{what} has sequence length {length!r}, more than the model's "
                         f"{limit} positions; truncate (tokenizer truncation=True, "
                         f"max_length={limit})")


def check_labels(labels: Tensor | None, shape: tuple[int, ...], what: str = "labels") -> None:
    """Labels, when given, must have ``shape``: one per token (B, S) or per sequence (B,)."""
    if labels is not None and tuple(labels.shape) != tuple(shape):
        per = "token" if len(shape) == 2 else "sequence"
        raise InputError(f"{what} has shape {tuple(labels.shape)!r}, expected {tuple(shape)!r}: "
                         f"give one label per {per} (-100 where none)")


def check_mask(mask: Tensor | None, ids: Tensor, what: str = "attention_mask") -> Tensor | None:
    """A (B, S) 0/1 or bool mask → bool, True = attend."""
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(ids.shape):
        raise InputError(f"{what} has shape {tuple(mask.shape)!r} but the ids have shape "
                         f"{tuple(ids.shape)}; pass one mask entry per token (1 = attend)")
    return mask.to(torch.bool)
