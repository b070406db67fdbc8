"""Decoding: greedy and beam search for :class:`~zoo_transformer.transformer.Transformer`,
greedy and sampling for :class:`~zoo_transformer.gpt2.GPT2`, all with a key/value cache.

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


def greedy(model: Any, src_ids: Tensor, max_new_tokens: int, use_cache: bool = True
           ) -> Tensor:
    """Pick the most likely token at each step until every row has produced EOS."""
    c = model.config
    memory, src_mask = model.encode(src_ids)
    steps = min(max_new_tokens, c.max_len - 1)
    state = model.start_decoding(memory, src_mask, steps + 1) if use_cache else None
    ys = torch.full((src_ids.shape[0], 1), c.bos_id, dtype=torch.long, device=src_ids.device)
    done = torch.zeros(src_ids.shape[0], dtype=torch.bool, device=src_ids.device)
    new = ys
    for _ in range(steps):
        logits = model.decode(ys, memory, src_mask) if state is None \
            else model.decode_step(new, state)
        nxt = logits[:, -1].argmax(-1).masked_fill(done, c.pad_id)  # (B,)
        ys = torch.cat([ys, nxt[:, None]], dim=1)
        new = nxt[:, None]
        done |= nxt.eq(c.eos_id)
        if bool(done.all()):
            break
    return ys


def beam_search(model: Any, src_ids: Tensor, beam_size: int, max_new_tokens: int,
                alpha: float = 0.6, use_cache: bool = True) -> Tensor:
    """The best hypothesis per source under the length-normalised score.

    With ``use_cache`` each step feeds every beam's last token and reorders the cache rows to
    the beams' parents; without it every step re-runs the decoder on all hypotheses."""
    if beam_size < 1:
        raise InputError(f"beam_size must be >= 1, got {beam_size!r}")
    c = model.config
    b, k = src_ids.shape[0], beam_size
    device = src_ids.device
    memory, src_mask = model.encode(src_ids)
    memory = memory.repeat_interleave(k, 0)  # (B*k, S, d)
    src_mask = src_mask.repeat_interleave(k, 0)
    steps = min(max_new_tokens, c.max_len - 1)
    state = model.start_decoding(memory, src_mask, steps + 1) if use_cache else None
    seqs = [[[c.bos_id]] * k for _ in range(b)]
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live beam at the start, so the k beams do not repeat
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    done = [False] * b
    parents = list(range(b * k))  # the row each beam continues
    last = [c.bos_id] * (b * k)  # the token each beam feeds next
    for step in range(1, steps + 1):
        if state is None:
            ys = _pad([s for row in seqs for s in row], c.pad_id, device)  # (B*k, t)
            logits = model.decode(ys, memory, src_mask)
        else:
            state.reorder(torch.tensor(parents, device=device))
            logits = model.decode_step(torch.tensor(last, device=device)[:, None], state)
        logp = logits[:, -1].float().log_softmax(-1)  # (B*k, V)
        vocab = logp.shape[-1]
        cand = (scores.view(-1, 1) + logp).view(b, k * vocab)
        top, idx = cand.topk(min(2 * k, k * vocab), dim=1)
        new_scores = torch.full_like(scores, float("-inf"))
        parents = list(range(b * k))
        last = [c.pad_id] * (b * k)  # empty slots: scored -inf, never chosen
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
                    slot = i * k + len(live)
                    new_scores[i, len(live)] = score
                    parents[slot], last[slot] = i * k + beam, tok
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
    return _pad(best, c.pad_id, device)


# -- decoder-only models (GPT-2) ----------------------------------------------------------
def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0) -> Tensor:
    """``logits`` (B, V) divided by ``temperature``, with ``-inf`` outside the ``top_k`` most
    likely tokens and outside the nucleus: the most likely tokens whose probabilities sum to
    ``top_p`` (Holtzman et al. 2019, arXiv:1904.09751, Eq. 3; the token that crosses
    ``top_p`` is kept, and always at least one)."""
    if temperature <= 0.0:
        raise InputError(f"temperature must be > 0, got {temperature!r}; for the most likely "
                         "token use do_sample=False")
    if not 0.0 < top_p <= 1.0:
        raise InputError(f"top_p must be in (0, 1], got {top_p!r}; 1.0 keeps every token")
    if top_k < 0:
        raise InputError(f"top_k must be >= 0 (0 = no limit), got {top_k!r}")
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ascending, order = logits.sort(dim=-1)
        drop = ascending.softmax(-1).cumsum(-1) <= 1.0 - top_p  # the unlikely tail
        drop[..., -1] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def causal_decode(model: Any, input_ids: Tensor, max_new_tokens: int, *, do_sample: bool,
                  temperature: float, top_k: int, top_p: float, eos_token_id: int,
                  attention_mask: Tensor | None, pad_token_id: int | None, use_cache: bool,
                  generator: torch.Generator | None) -> Tensor:
    """Decode a decoder-only ``model`` (GPT-2's :meth:`generate`); with ``use_cache`` each step
    feeds only the new token and reads earlier keys and values from a :class:`KVCache`."""
    from .layers.kv_cache import KVCache

    if max_new_tokens < 0:
        raise InputError(f"max_new_tokens must be >= 0, got {max_new_tokens!r}")
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise InputError(f"input_ids must be (batch, seq) with seq >= 1, got shape "
                         f"{tuple(input_ids.shape)!r}; give at least one token per row")
    b, s = input_ids.shape
    limit = model.config.max_positions
    if s + max_new_tokens > limit:
        raise InputError(f"{s} prompt tokens + max_new_tokens={max_new_tokens!r} exceed the "
                         f"model's {limit} positions; shorten the prompt or ask for fewer")
    pad = eos_token_id if pad_token_id is None else pad_token_id
    device = input_ids.device
    mask = None if attention_mask is None else attention_mask.to(torch.bool)
    positions = torch.arange(s, device=device).expand(b, s) if mask is None \
        else (mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding: first token at 0
    cache = KVCache(len(model.layers), s + max_new_tokens) if use_cache else None
    ids, done = input_ids, torch.zeros(b, dtype=torch.bool, device=device)
    step_ids, step_pos = input_ids, positions
    for _ in range(max_new_tokens):
        logits = model(step_ids, mask, position_ids=step_pos, cache=cache).logits[:, -1]
        if do_sample:
            probs = filter_logits(logits.float(), temperature, top_k, top_p).softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
        else:
            nxt = logits.argmax(-1)
        nxt = nxt.masked_fill(done, pad)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        done |= nxt.eq(eos_token_id)
        if bool(done.all()):
            break
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones(b, 1)], dim=1)
        positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
        step_ids, step_pos = (nxt[:, None], positions[:, -1:]) if use_cache \
            else (ids, positions)
    return ids
