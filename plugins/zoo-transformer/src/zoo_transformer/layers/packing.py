"""Packed sequences: the real tokens of a padded batch, without the padding.

A batch (B, S) padded to its longest sequence spends part of every position-wise product
(the attention projections, the feed-forward network, the layer norms) on padding. Packed,
its N real tokens are the rows of one (N, H) matrix: those layers then do N rows of work
instead of B·S. Only self-attention, which mixes the tokens of a sequence, sees the padded
batch again, under the key-padding mask. This is for inference on the CPU, where the work is
proportional to the rows: :meth:`Packing.of` declines the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Packing:
    """Where the real tokens of a (B, S) batch are.

    Attributes:
        index: (N,) flat positions ``b·S + s`` of the real tokens, sequence after sequence;
            None when every token is real (packing is then a reshape).
        shape: the padded batch's (B, S).
        mask: the (B, S) bool mask, True = real token; None when every token is real.
    """

    index: Tensor | None
    shape: tuple[int, int]
    mask: Tensor | None

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
            return cls(None, (b, s), None)
        if not bool(mask[:, 0].all()):
            return None
        return cls(mask.flatten().nonzero().squeeze(1), (b, s), mask)

    def pack(self, x: Tensor) -> Tensor:  # (B, S, …) -> (N, …)
        x = x.flatten(0, 1)
        return x if self.index is None else x.index_select(0, self.index)

    def unpack(self, x: Tensor) -> Tensor:  # (N, H) -> (B, S, H), zeros at the padding
        b, s = self.shape
        if self.index is not None:
            x = x.new_zeros(b * s, x.shape[-1]).index_copy_(0, self.index, x)
        return x.view(b, s, -1)
