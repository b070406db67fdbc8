"""Variable-length batches: lengths and ``PackedSequence`` in, step masks and packing out.

A batch of sequences x_b of lengths L_b ≤ T is kept padded, time-major (T, B, F); step t of
sequence b is real when t < L_b, which the mask k_{t,b} = [t < L_b] (T, B, 1) records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import zoo_core as zoo
from zoo_core import InputError


@dataclass
class Batch:
    """A padded, time-major batch and how to give the output back in the caller's form."""

    x: Tensor                          # (T, B, F)
    lengths: Tensor | None             # (B,) int64, None when not given
    mask: Tensor | None                # (T, B, 1) bool, None when every sequence is full
    batch_first: bool
    unbatched: bool
    packed: PackedSequence | None

    def restore(self, y: Tensor) -> Tensor | PackedSequence:
        """y (T, B, P) time-major → the caller's layout (packed, batch-first or unbatched)."""
        if self.packed is not None:
            p = self.packed
            lengths = self.lengths if self.lengths is not None else torch.full(
                (y.shape[1],), y.shape[0], dtype=torch.int64)
            order = p.sorted_indices
            ys = y if order is None else y.index_select(1, order.to(y.device))
            ls = lengths if order is None else lengths.index_select(0, order.cpu())
            data = pack_padded_sequence(ys, ls, enforce_sorted=True).data
            return PackedSequence(data, p.batch_sizes, p.sorted_indices, p.unsorted_indices)
        if self.unbatched:
            return y[:, 0]
        return y.transpose(0, 1) if self.batch_first else y


def as_lengths(lengths: Tensor | Sequence[int], batch: int, steps: int,
               enforce_sorted: bool) -> Tensor:
    """Check ``lengths`` against a batch of ``batch`` sequences of at most ``steps`` steps."""
    t = torch.as_tensor(lengths).detach()
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise InputError(f"lengths must hold integers, got dtype {t.dtype}; pass "
                         "torch.tensor([...], dtype=torch.int64)")
    if t.dim() != 1 or t.numel() != batch:
        raise InputError(f"lengths must be 1-D with one entry per sequence (batch {batch}), "
                         f"got shape {tuple(t.shape)}")
    if t.device.type != "cpu" or torch.compiler.is_compiling():
        return t.to(torch.int64)  # not read on a device (checking would wait for it) or traced
    bad = [(i, int(v)) for i, v in enumerate(t.tolist()) if not 1 <= v <= steps]
    if bad:
        i, v = bad[0]
        raise InputError(f"lengths[{i}] = {v!r} is out of range: each length must be in "
                         f"[1, {steps}] (the padded sequence has {steps} steps); drop empty "
                         "sequences from the batch or pad the input to the longest one")
    if enforce_sorted and bool((t[1:] > t[:-1]).any()):
        raise InputError(f"lengths {t.tolist()!r} are not sorted in decreasing order; sort the "
                         "batch by length or pass enforce_sorted=False")
    return t.to(torch.int64)


def check_ids(name: str, ids: Any, shape: tuple[int, ...] | None = None) -> None:
    """Raise unless ``ids`` is an integer (batch, steps) tensor (of ``shape`` when given): the
    shape and dtype only, never the values, so a forward that calls it does not sync."""
    zoo.checks.tensor(ids, name, dtype="integer", fix="token ids: convert with .long()")
    zoo.checks.tensor(ids, name, ndim=2, fix="(batch, steps): add a batch dimension with [None]")
    if shape is not None:
        zoo.checks.tensor(ids, name, shape=shape, fix="one id per input position")


def prepare(input: Tensor | PackedSequence, input_size: int, batch_first: bool,
            lengths: Tensor | Sequence[int] | None, enforce_sorted: bool) -> Batch:
    """Normalise a layer's input to a padded time-major batch with an optional step mask."""
    packed = None
    if isinstance(input, PackedSequence):
        if lengths is not None:
            raise InputError("pass either a PackedSequence or lengths, not both: a "
                             "PackedSequence already carries its lengths")
        packed = input
        x, lens = pad_packed_sequence(input)             # (T, B, F), original batch order
        unbatched = False
    else:
        if not isinstance(input, Tensor):
            raise InputError(f"input must be a Tensor or a PackedSequence, got "
                             f"{type(input).__name__}")
        if input.dim() not in (2, 3):
            raise InputError(f"input must be 3-D ({'(B, T, F)' if batch_first else '(T, B, F)'}"
                             f") or 2-D unbatched (T, F), got shape {tuple(input.shape)}")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if batch_first else input)
        lens = None
        if lengths is not None:
            if unbatched:
                raise InputError("lengths apply to a batch; an unbatched (T, F) input has one "
                                 "sequence: slice it to its length instead")
            lens = as_lengths(lengths, x.shape[1], x.shape[0], enforce_sorted)
    if x.shape[-1] != input_size:
        raise InputError(f"input has {x.shape[-1]} features per step, the layer expects "
                         f"input_size={input_size}")
    if x.shape[0] == 0:
        raise InputError("input has 0 time steps; a sequence needs at least one")
    mask = None
    if lens is not None:  # built whenever lengths are given: testing for "all full" would sync
        steps = torch.arange(x.shape[0], device=x.device)[:, None]
        mask = (steps < lens.to(x.device)[None, :]).unsqueeze(-1)
    return Batch(x, lens, mask, batch_first and packed is None, unbatched, packed)
