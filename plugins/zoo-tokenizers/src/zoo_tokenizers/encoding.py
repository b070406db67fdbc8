"""Encoded sequences: pairs with special tokens, truncation, padding and batching.

The conventions are BERT's (Devlin et al. 2018, section 3): ``[CLS] A [SEP]`` for one
sequence and ``[CLS] A [SEP] B [SEP]`` for a pair, segment ids 0 for the first part and 1 for
the second, attention mask 1 on real tokens and 0 on padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo_core import InputError

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")


@dataclass
class Encoding:
    """One encoded sequence (or pair): parallel lists, one item per token."""

    ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    offsets: list[tuple[int, int]] = field(default_factory=list)
    type_ids: list[int] = field(default_factory=list)
    special_tokens_mask: list[int] = field(default_factory=list)
    attention_mask: list[int] = field(default_factory=list)
    overflowing: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` tokens; the ids cut off go to ``overflowing``."""
        if n < len(self.ids):
            self.overflowing = self.ids[n:]
            for name in ("ids", "tokens", "offsets", "type_ids", "special_tokens_mask",
                         "attention_mask"):
                setattr(self, name, getattr(self, name)[:n])

    def pad(self, length: int, pad_id: int, pad_token: str, side: str = "right") -> None:
        """Pad to ``length`` with ``pad_id`` (attention mask 0, offsets ``(0, 0)``)."""
        n = length - len(self.ids)
        if n <= 0:
            return
        parts = {"ids": [pad_id] * n, "tokens": [pad_token] * n, "offsets": [(0, 0)] * n,
                 "type_ids": [0] * n, "special_tokens_mask": [1] * n, "attention_mask": [0] * n}
        for name, extra in parts.items():
            old = getattr(self, name)
            setattr(self, name, old + extra if side == "right" else extra + old)


def truncation_lengths(n1: int, n2: int | None, budget: int, strategy: str) -> tuple[int, int]:
    """How many tokens of each part to keep so that both fit in ``budget``.

    ``longest_first`` shortens the longer part first; when both are longer than half the
    budget, each keeps half (the first part gets the smaller half).
    """
    if strategy not in TRUNCATION_STRATEGIES:
        raise InputError(f"truncation strategy {strategy!r} is not one of "
                         f"{TRUNCATION_STRATEGIES}; pass truncation=True for 'longest_first'")
    m = 0 if n2 is None else n2
    if n1 + m <= budget or strategy == "do_not_truncate":
        return n1, m
    if budget < 0:
        raise InputError(f"max_length leaves {budget} tokens after the special tokens; raise it")
    if strategy == "only_second" and n2 is None:
        raise InputError("truncation='only_second' needs a pair of texts; use 'longest_first' "
                         "or 'only_first' for single texts")
    if n2 is None or strategy == "only_first":
        if budget - m <= 0:
            raise InputError(f"cannot truncate the first sequence to fit: {m} tokens of the "
                             f"second leave none of the budget {budget}; use 'longest_first'")
        return budget - m, m
    if strategy == "only_second":
        if budget - n1 <= 0:
            raise InputError(f"cannot truncate the second sequence to fit: {n1} tokens of the "
                             f"first leave none of the budget {budget}; use 'longest_first'")
        return n1, budget - n1
    short, long_ = min(n1, n2), max(n1, n2)
    keep_long = budget - short if short <= budget else short
    keep_long = max(short, keep_long)
    keep_short = short
    if keep_short + keep_long > budget:
        keep_short = budget // 2
        keep_long = keep_short + budget % 2
    keep_long = min(keep_long, long_)
    return (keep_short, keep_long) if n1 <= n2 else (keep_long, keep_short)


def padding_strategy(padding: bool | str) -> str:
    """Normalise ``padding=True|False|'longest'|'max_length'|'do_not_pad'``."""
    if padding is True:
        return "longest"
    if padding is False or padding is None:
        return "do_not_pad"
    if padding not in PADDING_STRATEGIES:
        raise InputError(f"padding {padding!r} is not one of True, False, {PADDING_STRATEGIES}")
    return str(padding)


def to_batch(encodings: list[Encoding], keys: tuple[str, ...], return_tensors: str | None,
             single: bool) -> dict[str, Any]:
    """The dict a HF-style ``__call__`` returns: lists, or ``torch`` tensors with ``"pt"``."""
    attr = {"input_ids": "ids", "offset_mapping": "offsets", "token_type_ids": "type_ids"}
    out: dict[str, Any] = {k: [getattr(e, attr.get(k, k)) for e in encodings] for k in keys}
    if return_tensors is None:
        return {k: v[0] for k, v in out.items()} if single else out
    if return_tensors != "pt":
        raise InputError(f"return_tensors={return_tensors!r} is not supported; use 'pt' or None")
    lengths = {len(e) for e in encodings}
    if len(lengths) > 1:
        raise InputError(f"sequences have different lengths {sorted(lengths)}: pass "
                         "padding=True (or 'max_length') to stack them into tensors")
    import torch

    return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
