"""Packed sequences: the real tokens of a padded batch, without the padding.

A batch (B, S) padded to its longest sequence spends part of every position-wise product
(the attention projections, the feed-forward network, the layer norms) on padding. Packed,
its N real tokens are the rows of one (N, H) matrix: those layers then do N rows of work
instead of B·S, and self-attention runs over each sequence's own tokens, where no mask is
needed (sequences of one length side by side in one call). This is for inference on the
CPU, where the work is proportional to the rows: :meth:`Packing.of` declines the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby

import torch
from torch import Tensor


@dataclass(frozen=True)
class Packing:
    """Where the real tokens of a (B, S) batch are.

    Attributes:
        index: (N,) flat positions ``b·S + s`` of the real tokens, sequence after sequence;
            None when every token is real (packing is then a reshape).
        lengths: real tokens of each sequence, B numbers adding up to N.
        shape: the padded batch's (B, S).
    """

    index: Tensor | None
    lengths: tuple[int, ...]
    shape: tuple[int, int]

    @classmethod
    def of(cls, ids: Tensor, mask: Tensor | None) -> Packing | None:
        """The packing of (B, S) ``ids`` under a bool ``mask`` (True = real token; None: all
        real), or None where it would not pay or would change an output: autograd on (the
        padded path is the one trained); a device other than the CPU; under
        ``torch.compile`` (packing reads the mask on the host: a graph break); a sequence
        whose first token is padding (the pooler reads position 0, left zero by packing)."""
        if ids.device.type != "cpu" or torch.is_grad_enabled() \
                or torch.compiler.is_compiling() or not ids.numel():
            return None
        b, s = ids.shape
        if mask is None or bool(mask.all()):
            return cls(None, (s,) * b, (b, s))
        if not bool(mask[:, 0].all()):
            return None
        return cls(mask.flatten().nonzero().squeeze(1), tuple(mask.sum(dim=1).tolist()),
                   (b, s))

    def pack(self, x: Tensor) -> Tensor:  # (B, S, …) -> (N, …)
        x = x.flatten(0, 1)
        return x if self.index is None else x.index_select(0, self.index)

    def unpack(self, x: Tensor) -> Tensor:  # (N, H) -> (B, S, H), zeros at the padding
        b, s = self.shape
        if self.index is not None:
            x = x.new_zeros(b * s, x.shape[-1]).index_copy_(0, self.index, x)
        return x.view(b, s, -1)

    def runs(self, x: Tensor) -> Iterator[Tensor]:
        """The rows of a packed (N, …) tensor as (count, length, …) views, one per run of
        consecutive sequences of one length."""
        start = 0
        for length, run in groupby(self.lengths):
            count = len(list(run))
            yield x[start:start + count * length].unflatten(0, (count, length))
            start += count * length
