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

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import batched_nms

from .mtcnn import MTCNN, Faces


def pyramid(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """Scales of the image pyramid: 12 / min_face, times factor, while the short side ≥ 12."""
    scale, side, scales = 12.0 / min_face, min(height, width) * 12.0 / min_face, []
    while side >= 12:
        scales.append(scale)
        scale, side = scale * factor, side * factor
    return scales


class _Fast:
    """A net rewritten for detection, with the same function:

    * the input normalisation ``(x − 127.5) / 128`` folded into the first convolution
      (``W' = W / 128``, ``b' = b − 127.5 Σ W'``), so raw 0…255 pixels go in;
    * PReLU after max-pooling instead of before, where every slope is ≥ 0 (then PReLU is
      non-decreasing and commutes with max): a quarter of the activations;
    * the face logits folded to their difference (``softmax(l)₁ = σ(l₁ − l₀)``) and stacked
      with the other heads into one layer: one call returns (probability, offsets…);
    * channels-last activations: CPU max-pooling with ``ceil_mode`` is 3–8× faster on them.
    """

    def __init__(self, net: nn.Module) -> None:
        layers = list(net.features)
        conv = layers[0]
        w = conv.weight * 0.0078125
        self.first = (w.contiguous(memory_format=torch.channels_last),
                      conv.bias - 127.5 * w.sum((1, 2, 3)))
        self.rest: list[nn.Module] = []
        i = 1
        while i < len(layers):
            pair = layers[i:i + 2]
            if len(pair) == 2 and isinstance(pair[0], nn.PReLU) and \
                    isinstance(pair[1], nn.MaxPool2d) and bool((pair[0].weight >= 0).all()):
                self.rest += [pair[1], pair[0]]
                i += 2
            else:
                self.rest.append(layers[i])
                i += 1
        heads = [net.score, net.box] + ([net.landmarks] if hasattr(net, "landmarks") else [])
        weight = torch.cat([h.weight for h in heads])
        bias = torch.cat([h.bias for h in heads])
        self.head_weight = torch.cat([weight[1:2] - weight[:1], weight[2:]])
        self.head_bias = torch.cat([bias[1:2] - bias[:1], bias[2:]])

    def __call__(self, x: Tensor) -> Tensor:
        """(probability, outputs…) stacked on dim 1, from raw pixels."""
        h = F.conv2d(x.contiguous(memory_format=torch.channels_last), *self.first)
        for layer in self.rest:
            h = layer(h)
        if h.dim() == 4:
            out = F.conv2d(h, self.head_weight, self.head_bias)
        else:
            out = F.linear(h, self.head_weight.flatten(1), self.head_bias)
        return torch.cat([out[:, :1].sigmoid(), out[:, 1:]], 1)


def _mean(total: Tensor, area: Tensor, dtype: torch.dtype) -> Tensor:
    """total / area rounded once to ``dtype`` (float32 division is exact enough, and exact
    in its inputs, when integer totals stay below 2²⁴)."""
    if total.dtype == torch.int32 and total.numel() and 255 * int(area.max()) < 2**24:
        return (total.to(dtype) / area.to(dtype)) if dtype == torch.float32 else \
            (total.double() / area).to(dtype)
    return (total.double() / area).to(dtype)


def _area(table: Tensor, rows: tuple[Tensor, Tensor], cols: tuple[Tensor, Tensor],
          dtype: torch.dtype) -> Tensor:
    """Area resampling read off summed-area tables (B, H + 1, W + 1, 3): output row i averages
    image rows [rows[0][i], rows[1][i]), column j columns [cols[0][j], cols[1][j]).
    Returns (B, 3, len(rows), len(cols)) in ``dtype``, channels-last in memory."""
    band = table.index_select(1, rows[1]) - table.index_select(1, rows[0])   # (B, h', W+1, 3)
    total = band.index_select(2, cols[1]) - band.index_select(2, cols[0])    # (B, h', w', 3)
    area = (rows[1] - rows[0])[:, None, None] * (cols[1] - cols[0])[None, :, None]
    return _mean(total, area, dtype).permute(0, 3, 1, 2)


def _pnet_level(pnet: _Fast, table: Tensor, height: int, width: int, size: tuple[int, int],
                tile_pixels: int) -> tuple[Tensor, Tensor]:
    """P-Net over one pyramid level of images (H, W) resampled to ``size`` (h, w), made and
    run in horizontal strips (a bounded amount of memory): probabilities (B, h', w') and
    offsets (B, 4, h', w'), equal to one pass over the whole level."""
    h, w = size
    zero = table.new_zeros(1, dtype=torch.long)
    rows = _bins(zero, torch.full_like(zero, height), h)
    cols = _bins(zero, torch.full_like(zero, width), w)
    rows, cols = (rows[0][0], rows[1][0]), (cols[0][0], cols[1][0])
    out_h = (h - 1) // 2 - 4                     # ⌈(h − 2) / 2⌉ − 4 output rows
    step = max(1, tile_pixels // (2 * w * table.shape[0]))
    parts = []
    for r0 in range(0, max(out_h, 1), step):
        r1 = min(out_h, r0 + step)
        end = h if r1 == out_h else 2 * (r1 - 1) + 12  # the window of output row r1 − 1
        strip = _area(table, (rows[0][2 * r0:end], rows[1][2 * r0:end]), cols,
                      pnet.first[0].dtype)
        parts.append(pnet(strip))
    out = torch.cat(parts, 2)                    # (B, 5, h', w')
    return out[:, 0], out[:, 1:]


def _stage1(model: MTCNN, groups: list[tuple[Tensor, Tensor]]
            ) -> tuple[Tensor, Tensor, Tensor]:
    """Windows proposed by P-Net: boxes (K, 4), scores (K,), image index (K,)."""
    cfg, pnet = model.config, _Fast(model.pnet)
    boxes, scores, index = [], [], []
    for ids, table in groups:
        h, w = table.shape[1] - 1, table.shape[2] - 1
        for scale in pyramid(h, w, cfg.min_face, cfg.factor):
            size = (int(h * scale + 1), int(w * scale + 1))
            probs, offsets = _pnet_level(pnet, table, h, w, size, cfg.tile_pixels)
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
    dtype = pnet.first[0].dtype
    if not boxes:
        empty = torch.zeros(0, 8, dtype=dtype, device=groups[0][1].device)
        return empty[:, :4], empty[:, 0], torch.zeros(0, dtype=torch.long, device=empty.device)
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


def _tables(images: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """Images grouped by size: (their indices (B,), summed-area tables (B, H + 1, W + 1, 3)).

    Sums are exact: int32 for 8-bit images up to 8.4 megapixels, int64 above, float64 for
    float images.
    """
    groups: dict[tuple[int, int, torch.dtype], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault((img.shape[1], img.shape[2], img.dtype), []).append(i)
    out = []
    for (h, w, kind), members in groups.items():
        device = images[members[0]].device
        dtype = torch.float64 if kind.is_floating_point else \
            torch.int32 if 255 * h * w < 2**31 else torch.int64
        table = torch.zeros(len(members), h + 1, w + 1, 3, dtype=dtype, device=device)
        for k, i in enumerate(members):
            inner = table[k, 1:, 1:]
            inner.copy_(images[i].permute(1, 2, 0))
            inner.cumsum_(0).cumsum_(1)
        out.append((torch.tensor(members, device=device), table))
    return out


def _bins(start: Tensor, length: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Area-resampling bins of ``length`` pixels onto ``size`` (adaptive average pooling):
    bin k spans ``[⌊k L / S⌋, ⌈(k + 1) L / S⌉)``, offset by ``start``. Shapes (N, S)."""
    k = torch.arange(size, device=start.device)
    lo = torch.div(k * length[:, None], size, rounding_mode="floor")
    hi = torch.div((k + 1) * length[:, None] + size - 1, size, rounding_mode="floor")
    return start[:, None] + lo, start[:, None] + hi


def _windows(table: Tensor, boxes: Tensor, index: Tensor, size: int
             ) -> tuple[Tensor, Tensor, Tensor]:
    """Crops of the boxes (in images ``index`` of the table) clipped to the images and
    area-resampled to size × size.

    Returns the crops' pixel sums (N', size, size, 3) and areas (N', size, size, 1), and the
    mask (N,) of boxes whose clipped crop is not empty (the crops are for those).
    """
    corner = boxes.trunc().long()
    x = corner[:, 0].clamp(min=1)
    y = corner[:, 1].clamp(min=1)
    ex = corner[:, 2].clamp(max=table.shape[2] - 1)
    ey = corner[:, 3].clamp(max=table.shape[1] - 1)
    valid = (ex >= x) & (ey >= y)
    x, y, ex, ey, index = x[valid], y[valid], ex[valid], ey[valid], index[valid]
    r0, r1 = _bins(y - 1, ey - y + 1, size)                          # (n, S)
    c0, c1 = _bins(x - 1, ex - x + 1, size)
    _, rows, cols, channels = table.shape
    first = index[:, None, None] * rows                              # (n, 1, 1)
    rgb = torch.arange(channels, device=index.device)

    def at(r: Tensor, c: Tensor) -> Tensor:                          # (n, S, S, 3)
        pixel = (first + r[:, :, None]) * cols + c[:, None, :]
        return table.take(pixel[..., None] * channels + rgb)

    total = at(r1, c1) - at(r0, c1) - at(r1, c0) + at(r0, c0)
    area = (r1 - r0)[:, :, None, None] * (c1 - c0)[:, None, :, None]
    return total, area, valid


def _refine(net: _Fast, groups: list[tuple[Tensor, Tensor]], boxes: Tensor, index: Tensor,
            size: int, batch: int) -> tuple[Tensor, Tensor, Tensor]:
    """The net on the boxes' crops, ``batch`` at a time, one size group of images after the
    other: (probability, outputs…) (n, k), and the boxes (n, 4) and image indices (n,) they
    belong to (boxes whose clipped crop is empty are dropped)."""
    dtype = net.first[0].dtype
    outs, kept, where = [], [], []
    for ids, table in groups:
        local = (index[:, None] == ids[None]).long()                 # (N, B) one-hot
        mine = local.any(1).nonzero()[:, 0]
        for i in range(0, mine.shape[0], batch):
            part = mine[i:i + batch]
            total, area, ok = _windows(table, boxes[part], local[part].argmax(1), size)
            outs.append(net(_mean(total, area, dtype).permute(0, 3, 1, 2)))
            kept.append(boxes[part][ok])
            where.append(index[part][ok])
    if not outs:
        return boxes.new_zeros(0, net.head_bias.shape[0]), boxes[:0], index[:0]
    return torch.cat(outs), torch.cat(kept), torch.cat(where)


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
    cfg = model.config
    groups = _tables(images)
    boxes, score, index = _stage1(model, groups)
    marks = boxes.new_zeros(0, 5, 2)
    if boxes.shape[0]:
        # stage 2: R-Net
        out, boxes, index = _refine(_Fast(model.rnet), groups, boxes, index, 24, cfg.batch)
        score, reg = out[:, 0], out[:, 1:]
        hit = score > cfg.thresholds[1]
        boxes, score, index, reg = boxes[hit], score[hit], index[hit], reg[hit]
        keep = batched_nms(boxes, score, index, cfg.nms[2])
        boxes = _square(_regress(boxes[keep], reg[keep]))
        score, index = score[keep], index[keep]
    if boxes.shape[0]:
        # stage 3: O-Net
        out, boxes, index = _refine(_Fast(model.onet), groups, boxes, index, 48, cfg.batch)
        score, reg, points = out[:, 0], out[:, 1:5], out[:, 5:]
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
