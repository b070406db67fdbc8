"""Packed sequences: the real tokens of a padded batch, without the padding.

A batch (B, S) padded to its longest sequence spends part of every position-wise product
(the attention projections, the feed-forward network, the layer norms) on padding. Packed,
its N real tokens are the rows of one (N, H) matrix: those layers then do N rows of work
instead of B·S, and self-attention runs over each sequence's own tokens, where no mask is
needed. This is for inference on the CPU (where the work is proportional to the rows):
:meth:`Packing.of` declines a batch it would not help.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Packing:
    """Where the real tokens of a (B, S) batch are.

    Attributes:
        index: (N,) flat positions ``b·S + s`` of the real tokens, sequence after sequence.
        lengths: real tokens of each sequence, B numbers adding up to N.
        shape: the padded batch's (B, S).
    """

    index: Tensor
    lengths: tuple[int, ...]
    shape: tuple[int, int]

    @classmethod
    def of(cls, mask: Tensor | None) -> Packing | None:
        """The packing of a (B, S) bool mask (True = real token), or None where packing
        would not pay or would change an output: no mask or no padding; autograd on (the
        padded path is the one trained); a device other than the CPU; under
        ``torch.compile`` (packing reads the mask on the host: a graph break); a sequence
        whose first token is padding (the pooler reads position 0, left zero by packing)."""
        if mask is None or mask.device.type != "cpu" or torch.is_grad_enabled() \
                or torch.compiler.is_compiling() or not mask.numel() or bool(mask.all()) \
                or not bool(mask[:, 0].all()):
            return None
        lengths = tuple(mask.sum(dim=1).tolist())
        return cls(mask.flatten().nonzero().squeeze(1), lengths, tuple(mask.shape))

    def pack(self, x: Tensor) -> Tensor:  # (B, S, …) -> (N, …)
        return x.flatten(0, 1).index_select(0, self.index)

    def unpack(self, x: Tensor) -> Tensor:  # (N, H) -> (B, S, H), zeros at the padding
        b, s = self.shape
        out = x.new_zeros(b * s, x.shape[-1])
        return out.index_copy_(0, self.index, x).view(b, s, -1)

    def sequences(self, x: Tensor) -> list[Tensor]:
        """The rows of each sequence of a packed (N, …) tensor, views."""
        return list(x.split(self.lengths))
