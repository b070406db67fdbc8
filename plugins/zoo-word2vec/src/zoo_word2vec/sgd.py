"""One closed-form SGD step of skip-gram / CBOW with negative sampling and hierarchical softmax.

Mikolov et al. 2013 (arXiv:1301.3781, arXiv:1310.4546). For an input vector ``h`` (a context
word's row of ``syn0`` in skip-gram, the mean or sum of the window's rows in CBOW) and output
rows ``u_j`` with labels ``y_j`` (negative sampling: the centre word with ``y = 1`` and ``K``
noise words with ``y = 0``; hierarchical softmax: the inner nodes on the centre word's Huffman
path with ``y = 1 - code``), the loss is eq. 4 of arXiv:1310.4546::

    L = -sum_j [ y_j log s(u_j . h) + (1 - y_j) log s(-u_j . h) ]

and its gradient has the closed form ``dL/du_j = -(y_j - s(u_j . h)) h`` and
``dL/dh = -sum_j (y_j - s(u_j . h)) u_j``. The step adds ``alpha`` times minus the gradient,
computed for a whole batch of centre words from one snapshot of the weights and scattered
with ``index_add_`` (duplicates add up; concurrent workers write without locks, Hogwild, as
the released C tool does). As in Ji et al. 2016 (arXiv:1604.04661), the context words of
one centre word share its ``K`` noise words, so each step is a batched matrix product.

Hierarchical softmax follows the released tool in skipping the update of a node whose score
is saturated (``|u . h| >= 6``), where the tool's sigmoid table ends.

CBOW follows the released tool: every context word receives the full ``dL/dh`` with the mean
(``cbow_mean=1``), and ``dL/dh`` divided by the window size with the sum (``cbow_mean=0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


class Workspace:
    """Reusable scratch buffers: fresh large allocations cost page faults on every step."""

    def __init__(self) -> None:
        self._bufs: dict[str, Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """A ``shape`` view of buffer ``name`` with ``like``'s dtype and device."""
        n = 1
        for s in shape:
            n *= s
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < n or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(max(n, 1 << 16), dtype=like.dtype, device=like.device)
            self._bufs[name] = buf
        return buf[:n].view(shape)


MAX_EXP = 6.0


@dataclass
class OutputBlock:
    """Output rows scored against each input: ``table[ids]`` with ``labels`` under ``mask``."""

    table: Tensor  # (N, D) syn1neg or syn1
    ids: Tensor  # (B, R) int64
    labels: Tensor  # (B, R) or (1, R) float
    mask: Tensor | None  # (B, R) bool, None = all valid
    saturate: float = 0.0  # > 0: no update where |u . h| >= saturate (the tool's HS rule)


def negative_block(syn1neg: Tensor, centre: Tensor, negatives: Tensor) -> OutputBlock:
    """The centre word (label 1) and its noise words (label 0); noise equal to it is dropped."""
    ids = torch.cat([centre[:, None], negatives], 1)  # (B, 1 + K)
    labels = torch.zeros(1, ids.shape[1], dtype=syn1neg.dtype, device=syn1neg.device)
    labels[0, 0] = 1.0
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[:, 1:] = negatives != centre[:, None]
    return OutputBlock(syn1neg, ids, labels, mask)


def hierarchical_block(syn1: Tensor, centre: Tensor, points: Tensor, codes: Tensor,
                       lengths: Tensor) -> OutputBlock:
    """The inner nodes on the centre word's Huffman path, label ``1 - code``."""
    depth = int(lengths[centre].max()) if centre.numel() else 1
    ids = points[centre, :depth]  # (B, L)
    labels = (1 - codes[centre, :depth]).to(syn1.dtype)
    mask = torch.arange(depth, device=lengths.device) < lengths[centre, None]
    return OutputBlock(syn1, ids, labels, mask, saturate=MAX_EXP)


def _masked_loss(scores: Tensor, labels: Tensor, mask: Tensor | None) -> Tensor:
    """``-log s(+-score)`` summed where ``mask`` holds (float64 sum)."""
    nll = F.softplus(scores.where(labels < 0.5, -scores))
    if mask is not None:
        nll = nll * mask
    return nll.sum(dtype=torch.float64)


def skipgram_step(syn0: Tensor, ctx: Tensor, ctx_mask: Tensor | None, blocks: list[OutputBlock],
                  alpha: float, ws: Workspace | None = None) -> Tensor:
    """Skip-gram step: each valid context word predicts the centre word; returns the loss sum.

    Args:
        syn0: (V, D) input vectors, updated in place.
        ctx: (B, C) context word ids of ``B`` centre words.
        ctx_mask: (B, C) bool, False where a slot is padding; None = all valid.
        blocks: output blocks (negative sampling and/or hierarchical softmax), updated in place.
        alpha: learning rate.
        ws: scratch buffers reused across steps (one per worker thread).
    """
    ws = ws or Workspace()
    b, c = ctx.shape
    d = syn0.shape[1]
    v_in = _gather(syn0, ctx, ws.take("v_in", (b, c, d), syn0))  # (B, C, D)
    grad_in = ws.take("grad_in", (b, c, d), syn0).zero_()
    loss = torch.zeros((), dtype=torch.float64, device=syn0.device)
    for blk in blocks:
        r = blk.ids.shape[1]
        v_out = _gather(blk.table, blk.ids, ws.take("v_out", (b, r, d), syn0))  # (B, R, D)
        scores = torch.bmm(v_in, v_out.transpose(1, 2), out=ws.take("s", (b, c, r), syn0))
        mask = _pair_mask(ctx_mask, blk.mask, scores)
        loss += _masked_loss(scores, blk.labels[:, None, :], mask)
        if blk.saturate:
            mask = _unsaturated(scores, mask, blk.saturate)
        g = torch.sigmoid_(scores).neg_().add_(blk.labels[:, None, :]).mul_(alpha)  # (B, C, R)
        if mask is not None:
            g.mul_(mask)
        grad_in.baddbmm_(g, v_out)  # (B, C, D)
        grad_out = torch.bmm(g.transpose(1, 2), v_in, out=ws.take("g_out", (b, r, d), syn0))
        blk.table.index_add_(0, blk.ids.reshape(-1), grad_out.view(-1, d))
    syn0.index_add_(0, ctx.reshape(-1), grad_in.view(-1, d))
    return loss


def _gather(table: Tensor, ids: Tensor, out: Tensor) -> Tensor:
    """``table[ids]`` written into ``out`` (shape ``ids.shape + (D,)``)."""
    torch.index_select(table, 0, ids.reshape(-1), out=out.view(-1, table.shape[1]))
    return out


def cbow_step(syn0: Tensor, ctx: Tensor, ctx_mask: Tensor | None, blocks: list[OutputBlock],
              alpha: float, cbow_mean: bool, ws: Workspace | None = None) -> Tensor:
    """CBOW step: the window's mean (or sum) predicts the centre word; returns the loss sum."""
    ws = ws or Workspace()
    b, c = ctx.shape
    d = syn0.shape[1]
    v_in = _gather(syn0, ctx, ws.take("v_in", (b, c, d), syn0))  # (B, C, D)
    if ctx_mask is None:
        count = torch.full((b, 1), float(c), dtype=syn0.dtype, device=syn0.device)
        h = v_in.sum(1)  # (B, D)
    else:
        m = ctx_mask.to(syn0.dtype)
        count = m.sum(1, keepdim=True)
        h = v_in.mul_(m[:, :, None]).sum(1)  # (B, D); padding rows zeroed in the scratch copy
    if cbow_mean:
        h = h / count.clamp_min(1)
    has_ctx = count.squeeze(1) > 0  # (B,)
    neu1e = torch.zeros_like(h)
    loss = torch.zeros((), dtype=torch.float64, device=syn0.device)
    for blk in blocks:
        r = blk.ids.shape[1]
        v_out = _gather(blk.table, blk.ids, ws.take("v_out", (b, r, d), syn0))  # (B, R, D)
        # (B, R); a multiply-sum beats bmm's tiny matrix-vector products here
        scores = torch.mul(v_out, h[:, None, :], out=ws.take("hv", (b, r, d), syn0)).sum(-1)
        mask = has_ctx[:, None] if blk.mask is None else blk.mask & has_ctx[:, None]
        loss += _masked_loss(scores, blk.labels, mask)
        if blk.saturate:
            mask = _unsaturated(scores, mask, blk.saturate)
        g = torch.sigmoid_(scores).neg_().add_(blk.labels).mul_(alpha).mul_(mask)  # (B, R)
        neu1e.add_(torch.bmm(g[:, None, :], v_out).squeeze(1))
        grad_out = torch.mul(g[:, :, None], h[:, None, :], out=ws.take("g_out", (b, r, d), syn0))
        blk.table.index_add_(0, blk.ids.reshape(-1), grad_out.view(-1, d))
    if not cbow_mean:
        neu1e.div_(count.clamp_min(1))
    grad_in = ws.take("grad_in", (b, c, d), syn0)
    if ctx_mask is None:
        grad_in.copy_(neu1e[:, None, :].expand(b, c, d))
    else:
        torch.mul(neu1e[:, None, :], ctx_mask[:, :, None], out=grad_in)
    syn0.index_add_(0, ctx.reshape(-1), grad_in.view(-1, d))
    return loss


def _unsaturated(scores: Tensor, mask: Tensor | None, limit: float) -> Tensor:
    inside = scores.abs() < limit
    return inside if mask is None else inside & mask


def _pair_mask(ctx_mask: Tensor | None, out_mask: Tensor | None, like: Tensor) -> Tensor | None:
    if ctx_mask is None and out_mask is None:
        return None
    b, c, r = like.shape
    ones = torch.ones((), dtype=torch.bool, device=like.device)
    cm = ctx_mask[:, :, None] if ctx_mask is not None else ones.expand(b, c, 1)
    om = out_mask[:, None, :] if out_mask is not None else ones.expand(b, 1, r)
    return cm & om  # (B, C, R)
