"""Masked-LM inputs, Devlin et al. 2018 (arXiv:1810.04805), Section 3.1 and Appendix A.1.

Each non-special token is chosen with probability ``p`` (15%); a chosen token becomes
``[MASK]`` 80% of the time, a random token 10% and stays unchanged 10%; the loss is taken on
chosen tokens only (label ``-100`` elsewhere). Masks are drawn afresh for every batch
("dynamic masking", Liu et al. 2019, Section 4.1). Whole-word masking chooses words instead
of WordPiece tokens: a word's ``##`` continuations are masked with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo_core import InputError

IGNORE = -100


def word_ids(tokens: Sequence[Sequence[str]], special: Tensor) -> Tensor:
    """Per-token word index (B, S): WordPiece ``##`` pieces join the previous word; -1 for
    special tokens."""
    out = torch.full(special.shape, -1, dtype=torch.long)
    for b, row in enumerate(tokens):
        word = -1
        for s, tok in enumerate(row):
            if bool(special[b, s]):
                continue
            if not (tok.startswith("##") and word >= 0):
                word += 1
            out[b, s] = word
    return out


def mask_tokens(input_ids: Tensor, special: Tensor, mask_token_id: int, vocab_size: int,
                prob: float = 0.15, generator: torch.Generator | None = None,
                words: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Return ``(masked_ids, labels)`` for ``input_ids`` (B, S).

    Args:
        special: (B, S) bool, True where a token may never be chosen ([CLS], [SEP], padding).
        words: (B, S) word indices from :func:`word_ids` for whole-word masking, else None.
    """
    if not 0.0 < prob < 1.0:
        raise InputError(f"mask probability {prob!r} must be in (0, 1); BERT uses 0.15")
    g = generator
    if words is None:
        chosen = torch.rand(input_ids.shape, generator=g) < prob  # (B, S)
    else:
        n_words = int(words.max()) + 1 if words.numel() else 0
        pick = torch.rand((input_ids.shape[0], max(n_words, 1)), generator=g) < prob  # (B, W)
        chosen = pick.gather(1, words.clamp(min=0)) & words.ge(0)
    chosen &= ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    roll = torch.rand(input_ids.shape, generator=g)
    to_mask = chosen & (roll < 0.8)
    to_random = chosen & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=g)
    out = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    return torch.where(to_random, random_ids, out), labels
