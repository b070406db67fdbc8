"""The MTCNN cascade over whole images, batched over images and windows.

Stage 1 runs P-Net over an image pyramid (scales ``12 / min_face · factorᵏ`` while the short
side stays ≥ 12 px): an output cell (row i, column j) at scale s stands for the window
``x1 = ⌊(2j + 1) / s⌋, x2 = ⌊(2j + 12) / s⌋`` (same for y). Windows scoring ≥ the first
threshold go through NMS within their level (IoU 0.5), then across levels (0.7), are moved by
their regression ``x1 + dx1 · w`` … and squared around their centre.

Stages 2 and 3 cut every window out of the image (clipped to it: rows ``[max(⌊y1⌋, 1) − 1,
min(⌊y2⌋, H))``), resample it to 24×24 (48×48) by area averaging and score it with R-Net
(O-Net). Survivors (score > threshold) go through NMS and regression with ``w = x2 − x1 + 1``;
O-Net also places the five landmarks in its window; the last NMS compares intersections with
the smaller area. These conventions are those of the reference MATLAB code and of
facenet-pytorch, whose output this module reproduces.

The window crops are one gather from each image's summed-area table (no loop over boxes), so
every window of every image goes through R-Net and O-Net in a few large batches.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import batched_nms

from .mtcnn import MTCNN, Faces


def pyramid(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """Scales of the image pyramid: 12 / min_face, times factor, while the short side ≥ 12."""
    scale, side, scales = 12.0 / min_face, min(height, width) * 12.0 / min_face, []
    while side >= 12:
        scales.append(scale)
        scale, side = scale * factor, side * factor
    return scales


def _normalise(x: Tensor) -> Tensor:
    return (x - 127.5) * 0.0078125


def _pnet_strips(model: MTCNN, level: Tensor) -> tuple[Tensor, Tensor]:
    """P-Net over a level (B, 3, h, w) in horizontal strips: probabilities (B, h', w') and
    offsets (B, 4, h', w'), equal to one pass over the whole level."""
    b, _, h, w = level.shape
    out_h = (h - 1) // 2 - 4                     # ⌈(h − 2) / 2⌉ − 4 output rows
    rows = max(1, model.config.tile_pixels // (2 * w * b))
    probs, offsets = [], []
    for r0 in range(0, max(out_h, 1), rows):
        r1 = min(out_h, r0 + rows)
        end = h if r1 == out_h else 2 * (r1 - 1) + 12  # the window of output row r1 − 1
        logits, off = model.pnet(level[:, :, 2 * r0:end])
        probs.append(logits.softmax(1)[:, 1])
        offsets.append(off)
    return torch.cat(probs, 1), torch.cat(offsets, 2)


def _stage1(model: MTCNN, images: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Windows proposed by P-Net: boxes (K, 4), scores (K,), image index (K,)."""
    cfg = model.config
    boxes, scores, index = [], [], []
    groups: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(tuple(img.shape[1:]), []).append(i)
    for (h, w), members in groups.items():
        batch = (torch.stack([images[i] for i in members]) if len(members) > 1
                 else images[members[0]][None])                     # (B, 3, H, W)
        ids = torch.tensor(members, device=batch.device)
        for scale in pyramid(h, w, cfg.min_face, cfg.factor):
            level = F.interpolate(batch, size=(int(h * scale + 1), int(w * scale + 1)),
                                  mode="area")
            probs, offsets = _pnet_strips(model, _normalise(level))
            hit = probs >= cfg.thresholds[0]
            where = hit.nonzero()                                    # (k, 3): image, row, col
            cell = where[:, 1:].flip(1).to(probs.dtype)              # (k, 2): col, row
            x1y1 = ((2 * cell + 1) / scale).floor()
            x2y2 = ((2 * cell + 12) / scale).floor()
            win = torch.cat([x1y1, x2y2], 1)
            score = probs[hit]
            reg = offsets.permute(0, 2, 3, 1)[hit]                   # (k, 4)
            keep = batched_nms(win, score, where[:, 0], cfg.nms[0])
            boxes.append(torch.cat([win[keep], reg[keep]], 1))
            scores.append(score[keep])
            index.append(ids[where[keep, 0]])
    if not boxes:
        empty = images[0].new_zeros(0, 8)
        return empty, empty[:, 0], torch.zeros(0, dtype=torch.long, device=empty.device)
    both, score, idx = torch.cat(boxes), torch.cat(scores), torch.cat(index)
    keep = batched_nms(both[:, :4], score, idx, cfg.nms[1])
    both, score, idx = both[keep], score[keep], idx[keep]
    win, reg = both[:, :4], both[:, 4:]
    size = (win[:, 2:] - win[:, :2]).repeat(1, 2)                    # (w, h, w, h), no +1
    return _square(win + reg * size), score, idx


def _regress(boxes: Tensor, reg: Tensor) -> Tensor:
    """Move boxes by offsets in units of their size (w = x2 − x1 + 1)."""
    size = (boxes[:, 2:] - boxes[:, :2] + 1).repeat(1, 2)
    return boxes + reg * size


def _square(boxes: Tensor) -> Tensor:
    """Squares of side max(w, h) with the boxes' centres."""
    wh = boxes[:, 2:] - boxes[:, :2]
    side = wh.max(1, keepdim=True).values
    x1y1 = boxes[:, :2] + wh * 0.5 - side * 0.5
    return torch.cat([x1y1, x1y1 + side], 1)


def _integrals(images: list[Tensor]) -> Tensor:
    """Summed-area tables (N, 3, H_max + 1, W_max + 1) in float64 (exact for 8-bit data)."""
    h = max(img.shape[1] for img in images)
    w = max(img.shape[2] for img in images)
    out = torch.zeros(len(images), 3, h + 1, w + 1, dtype=torch.float64,
                      device=images[0].device)
    for i, img in enumerate(images):
        out[i, :, 1:img.shape[1] + 1, 1:img.shape[2] + 1] = \
            img.double().cumsum(1).cumsum(2)
    return out


def _bins(start: Tensor, length: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Area-resampling bins of ``length`` pixels onto ``size`` (adaptive average pooling):
    bin k spans ``[⌊k L / S⌋, ⌈(k + 1) L / S⌉)``, offset by ``start``. Shapes (N, S)."""
    k = torch.arange(size, device=start.device)
    lo = torch.div(k * length[:, None], size, rounding_mode="floor")
    hi = torch.div((k + 1) * length[:, None] + size - 1, size, rounding_mode="floor")
    return start[:, None] + lo, start[:, None] + hi


def _windows(table: Tensor, sizes: Tensor, boxes: Tensor, index: Tensor, size: int
             ) -> tuple[Tensor, Tensor]:
    """Crops of the boxes clipped to their images, area-resampled to size × size.

    Returns (N', 3, size, size) crops in 0…255 and the mask (N,) of boxes whose clipped crop
    is not empty (the crops are for those).
    """
    hw = sizes[index]                                                # (N, 2): H, W
    corner = boxes.trunc().long()
    x = corner[:, 0].clamp(min=1)
    y = corner[:, 1].clamp(min=1)
    ex = torch.minimum(corner[:, 2], hw[:, 1])
    ey = torch.minimum(corner[:, 3], hw[:, 0])
    valid = (ex >= x) & (ey >= y)
    x, y, ex, ey, index = x[valid], y[valid], ex[valid], ey[valid], index[valid]
    r0, r1 = _bins(y - 1, ey - y + 1, size)                          # (n, S)
    c0, c1 = _bins(x - 1, ex - x + 1, size)
    n = index[:, None, None]

    def at(r: Tensor, c: Tensor) -> Tensor:                          # (n, S, S, 3)
        return table[n, :, r[:, :, None], c[:, None, :]]

    total = at(r1, c1) - at(r0, c1) - at(r1, c0) + at(r0, c0)
    area = (r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]
    return (total / area[..., None]).permute(0, 3, 1, 2), valid


def _in_batches(fn: Any, windows: Tensor, batch: int) -> tuple[Tensor, ...]:
    parts = [fn(windows[i:i + batch]) for i in range(0, windows.shape[0], batch)]
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def _crops(model: MTCNN, table: Tensor, sizes: Tensor, boxes: Tensor, index: Tensor,
           size: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Normalised crops (float dtype) of the boxes, and the mask of boxes that have one."""
    parts, valid = [], []
    for i in range(0, boxes.shape[0], model.config.batch):
        crop, ok = _windows(table, sizes, boxes[i:i + model.config.batch],
                            index[i:i + model.config.batch], size)
        parts.append(_normalise(crop.to(dtype)))
        valid.append(ok)
    return torch.cat(parts), torch.cat(valid)


def nms_min(boxes: Tensor, scores: Tensor, groups: Tensor, threshold: float) -> Tensor:
    """Greedy NMS by intersection over the smaller area (inclusive pixel extents), per group.

    Returns the kept indices by decreasing score. The greedy result is the fixed point of
    ``keep_i = not any(keep_j and overlap_ji > t for j ranked before i)``, reached by
    iterating that rule on the whole overlap matrix: rounds, not a loop over boxes.
    """
    order = scores.argsort(descending=True)
    b, g = boxes[order], groups[order]
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    lo = torch.maximum(b[:, None, :2], b[None, :, :2])
    hi = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (hi - lo + 1).clamp(min=0).prod(2)
    overlap = inter / torch.minimum(area[:, None], area[None, :])
    n = b.shape[0]
    before = torch.ones(n, n, dtype=torch.bool, device=b.device).triu(1)
    beats = (overlap > threshold) & (g[:, None] == g[None, :]) & before  # i suppresses j
    keep = torch.ones(n, dtype=torch.bool, device=b.device)
    while True:
        again = ~(keep[:, None] & beats).any(0)
        if torch.equal(again, keep):
            return order[keep]
        keep = again


def detect(model: MTCNN, images: list[Tensor]) -> list[Faces]:
    """Run the cascade on float RGB images (3, H, W) holding 0…255."""
    cfg, dtype = model.config, images[0].dtype
    device = images[0].device
    boxes, score, index = _stage1(model, images)
    marks = boxes.new_zeros(0, 5, 2)
    if boxes.shape[0]:
        table = _integrals(images)
        sizes = torch.tensor([img.shape[1:] for img in images], device=device)
        # stage 2: R-Net
        crops, ok = _crops(model, table, sizes, boxes, index, 24, dtype)
        boxes, index = boxes[ok], index[ok]
        logits, reg = _in_batches(model.rnet, crops, cfg.batch)
        score = logits.softmax(1)[:, 1]
        hit = score > cfg.thresholds[1]
        boxes, score, index, reg = boxes[hit], score[hit], index[hit], reg[hit]
        keep = batched_nms(boxes, score, index, cfg.nms[2])
        boxes = _square(_regress(boxes[keep], reg[keep]))
        score, index = score[keep], index[keep]
    if boxes.shape[0]:
        # stage 3: O-Net
        crops, ok = _crops(model, table, sizes, boxes, index, 48, dtype)
        boxes, index = boxes[ok], index[ok]
        logits, reg, points = _in_batches(model.onet, crops, cfg.batch)
        score = logits.softmax(1)[:, 1]
        hit = score > cfg.thresholds[2]
        boxes, score, index, reg, points = boxes[hit], score[hit], index[hit], reg[hit], \
            points[hit]
        size = boxes[:, 2:] - boxes[:, :2] + 1                       # (n, 2)
        marks = points.view(-1, 2, 5).transpose(1, 2) * size[:, None] + boxes[:, None, :2] - 1
        boxes = _regress(boxes, reg)
        keep = nms_min(boxes, score, index, cfg.nms[3])
        boxes, score, index, marks = boxes[keep], score[keep], index[keep], marks[keep]
    out = []
    for i in range(len(images)):   # split the flat detections per image (kept score order)
        mine = index == i
        out.append(Faces(boxes[mine], score[mine], marks[mine]))
    return out
