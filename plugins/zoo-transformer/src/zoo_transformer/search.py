"""Greedy and beam-search decoding for :class:`~zoo_transformer.transformer.Transformer`.

Beam search keeps the ``k`` best partial hypotheses by summed log-probability and ranks
finished ones by ``log P(Y|X) / lp(Y)`` with ``lp(Y) = ((5 + |Y|) / 6)^α`` (Wu et al. 2016,
arXiv:1609.08144, Eq. 14; ``|Y|`` counts the generated tokens including EOS). A sentence stops
when ``k`` hypotheses have finished and no live one can still beat the best of them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from zoo_core import InputError


def length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


def _pad(seqs: list[list[int]], pad: int, device: torch.device) -> Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), pad, dtype=torch.long, device=device)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def greedy(model: Any, src_ids: Tensor, max_new_tokens: int) -> Tensor:
    """Pick the most likely token at each step until every row has produced EOS."""
    c = model.config
    memory, src_mask = model.encode(src_ids)
    ys = torch.full((src_ids.shape[0], 1), c.bos_id, dtype=torch.long, device=src_ids.device)
    done = torch.zeros(src_ids.shape[0], dtype=torch.bool, device=src_ids.device)
    for _ in range(min(max_new_tokens, c.max_len - 1)):
        nxt = model.decode(ys, memory, src_mask)[:, -1].argmax(-1)  # (B,)
        nxt = nxt.masked_fill(done, c.pad_id)
        ys = torch.cat([ys, nxt[:, None]], dim=1)
        done |= nxt.eq(c.eos_id)
        if bool(done.all()):
            break
    return ys


def beam_search(model: Any, src_ids: Tensor, beam_size: int, max_new_tokens: int,
                alpha: float = 0.6) -> Tensor:
    """The best hypothesis per source under the length-normalised score."""
    if beam_size < 1:
        raise InputError(f"beam_size must be >= 1, got {beam_size!r}")
    c = model.config
    b, k = src_ids.shape[0], beam_size
    memory, src_mask = model.encode(src_ids)
    memory = memory.repeat_interleave(k, 0)  # (B*k, S, d)
    src_mask = src_mask.repeat_interleave(k, 0)
    seqs = [[[c.bos_id]] * k for _ in range(b)]
    scores = torch.full((b, k), float("-inf"), device=src_ids.device)
    scores[:, 0] = 0.0  # one live beam at the start, so the k beams do not repeat
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    done = [False] * b
    steps = min(max_new_tokens, c.max_len - 1)
    for step in range(1, steps + 1):
        ys = _pad([s for row in seqs for s in row], c.pad_id, src_ids.device)  # (B*k, t)
        logp = model.decode(ys, memory, src_mask)[:, -1].float().log_softmax(-1)  # (B*k, V)
        vocab = logp.shape[-1]
        cand = (scores.view(-1, 1) + logp).view(b, k * vocab)
        top, idx = cand.topk(min(2 * k, k * vocab), dim=1)
        new_scores = torch.full_like(scores, float("-inf"))
        for i in range(b):
            if done[i]:
                continue
            live: list[list[int]] = []
            for score, j in zip(top[i].tolist(), idx[i].tolist(), strict=True):
                if score == float("-inf"):
                    break
                beam, tok = divmod(j, vocab)
                seq = seqs[i][beam] + [tok]
                if tok == c.eos_id:
                    finished[i].append((score / length_penalty(step, alpha), seq))
                else:
                    new_scores[i, len(live)] = score
                    live.append(seq)
                if len(live) == k:
                    break
            seqs[i] = live + [[c.bos_id]] * (k - len(live))
            best_live = new_scores[i].max().item()
            if len(finished[i]) >= k or not live:
                # scores are ≤ 0, so the best a live beam can reach is best_live / lp(max)
                bound = best_live / length_penalty(steps, alpha) if live else float("-inf")
                done[i] = max(f[0] for f in finished[i]) >= bound
        scores = new_scores
        if all(done):
            break
    best = []
    for i in range(b):
        pool = finished[i] or [(float(s) / length_penalty(steps, alpha), q)
                               for s, q in zip(scores[i].tolist(), seqs[i], strict=True)]
        best.append(max(pool, key=lambda f: f[0])[1])
    return _pad(best, c.pad_id, src_ids.device)
