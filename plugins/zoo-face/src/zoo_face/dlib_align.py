"""Alignment as dlib does it: the 5-point shape predictor and ``get_face_chip``.

* Landmarks: Kazemi & Sullivan, 2014, "One Millisecond Face Alignment with an Ensemble of
  Regression Trees" (dlib's ``shape_predictor``). The shape starts at the mean shape placed in
  the face box; each cascade level reads the grey level at 800 pixels, each given as an anchor
  landmark plus an offset carried by the similarity that maps the mean shape onto the current
  one, and adds the leaf vectors its 500 depth-4 trees select by comparing pixel pairs
  (``I[a] - I[b] > threshold``: left child ``2i+1``, else right ``2i+2``).
* Chips: ``get_face_chip_details(shape, size=150, padding=0.25)``: the similarity that maps
  dlib's 5-point template (padded) onto the landmarks gives the chip's rectangle and angle;
  ``extract_image_chip`` first halves the image with dlib's 5×5 ``pyramid_down<2>`` while the
  rectangle stays larger than the chip, then samples it bilinearly (values truncated to
  uint8, black outside the image).

dlib's boxes come from its HOG detector, ours from MTCNN: :func:`dlib_box` maps an MTCNN box
onto the box dlib's detector draws around the same face (an affine fit, see its docstring).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# dlib's 5-point chip template (interpolation.h), in [0, 1] face coordinates
TEMPLATE = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                     [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                     [0.4901123135679, 0.6277975316475]])

# dlib box = MTCNN box's centre + BOX_SHIFT·size, side BOX_SCALE·size (size: the MTCNN box's
# mean side): the mean over the 96 faces both detectors find in grace_hopper, astronaut and
# skimage's LFW subset (upscaled 8x); spread 0.06, 0.05 and 0.09 of the size.
BOX_SHIFT = (-0.009, 0.054)
BOX_SCALE = 0.958

# MTCNN's landmarks (eyes, nose, mouth corners) in TEMPLATE's frame: their mean position, mapped
# through the similarity of dlib's own chip, over the 95 faces both chains find in the photos
# above (spread 0.016 for the eyes, 0.04-0.05 for nose and mouth): the alternative alignment.
MTCNN_TEMPLATE = np.array([[0.2342, 0.2172], [0.777, 0.2121], [0.484, 0.5275],
                           [0.2827, 0.8081], [0.7415, 0.8074]])
ALIGNMENTS = ("shape-predictor", "mtcnn-template")
"""How chips are placed: dlib's 5-point predictor in the mapped MTCNN box (the default: it
agrees better with dlib's chips and descriptors, see the README), or MTCNN's own landmarks
fitted onto the template."""


def dlib_box(box: Any) -> np.ndarray:
    """An MTCNN box (x1, y1, x2, y2) as the box dlib's HOG detector draws (left, top, right,
    bottom), the input its shape predictor was trained on."""
    x1, y1, x2, y2 = (float(v) for v in box)
    size = ((x2 - x1) + (y2 - y1)) / 2
    cx, cy = (x1 + x2) / 2 + BOX_SHIFT[0] * size, (y1 + y2) / 2 + BOX_SHIFT[1] * size
    half = BOX_SCALE * size / 2
    return np.array([cx - half, cy - half, cx + half, cy + half])


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ M @ src + t`` (Umeyama, 1991), as dlib's
    ``find_similarity_transform``; returns (M 2×2, t)."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    var = (s ** 2).sum() / len(src)
    cov = d.T @ s / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    det = np.linalg.det(cov)
    if det < 0 or det == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sv) @ sign) / var if var > 0 else 1.0
    m = scale * rot
    return m, md - m @ ms


class ShapePredictor:
    """dlib's 5-point landmark cascade over numpy, from a ``DlibResNet``'s ``landmarks`` buffers.

    Example:
        >>> sp = ShapePredictor(zoo.load("dlib-resnet-v1").landmarks)
        >>> sp(image, dlib_box(mtcnn_box))      # (5, 2) x, y, dlib's landmark order
    """

    def __init__(self, buffers: Any) -> None:
        def arr(name: str) -> np.ndarray:
            return getattr(buffers, name).detach().cpu().numpy()

        self.mean = arr("mean_shape").astype(np.float32).reshape(-1, 2)  # (P, 2)
        self.anchors, self.deltas = arr("anchors"), arr("deltas").astype(np.float32)
        self.split_a, self.split_b = arr("split_a"), arr("split_b")
        self.threshold, self.leaves = arr("threshold"), arr("leaves").astype(np.float32)

    def __call__(self, image: np.ndarray, box: Any) -> np.ndarray:
        """Landmarks (5, 2), whole pixels as dlib's, in ``image`` (uint8 (H, W, 3) RGB or
        (H, W) grey) for a dlib-style box (left, top, right, bottom)."""
        grey = image if image.ndim == 2 else (image.astype(np.uint16).sum(-1) // 3)
        left, top, right, bottom = (float(v) for v in box)
        to_image = np.array([right - left, bottom - top]), np.array([left, top])
        shape = self.mean.copy()  # (P, 2), box coordinates in [0, 1]
        h, w = grey.shape
        trees = np.arange(self.split_a.shape[1])
        for level in range(self.split_a.shape[0]):
            m, _ = similarity(self.mean.astype(np.float64), shape.astype(np.float64))
            where = (self.deltas[level] @ m.T.astype(np.float32)
                     + shape[self.anchors[level]]) * to_image[0] + to_image[1]
            px = np.floor(where + 0.5).astype(np.int64)  # dlib's dpoint -> point rounding
            inside = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
            values = np.where(inside, grey[px[:, 1].clip(0, h - 1), px[:, 0].clip(0, w - 1)],
                              0).astype(np.float32)
            node = np.zeros(len(trees), dtype=np.int64)
            a, b, th = self.split_a[level], self.split_b[level], self.threshold[level]
            splits = a.shape[1]
            while node[0] < splits:  # complete trees: every path has the same depth
                go_left = values[a[trees, node]] - values[b[trees, node]] > th[trees, node]
                node = np.where(go_left, 2 * node + 1, 2 * node + 2)
            shape = shape + self.leaves[level][trees, node - splits].sum(0).reshape(-1, 2)
        return np.floor(shape * to_image[0] + to_image[1] + 0.5)  # dlib's parts are pixels


    def box_for(self, points: np.ndarray) -> np.ndarray:
        """The square box in which the mean shape best fits ``points`` (5, 2) (least squares
        over a scale and a shift): dlib's detector box, on average over its training faces."""
        m = self.mean.astype(np.float64)
        mc, pc = m.mean(0), points.mean(0)
        side = ((points - pc) * (m - mc)).sum() / ((m - mc) ** 2).sum()
        x, y = pc - side * mc
        return np.array([x, y, x + side, y + side])

    def landmarks(self, image: np.ndarray, mtcnn_box: Any, refine: int = 2) -> np.ndarray:
        """Landmarks from an MTCNN box: predicted in :func:`dlib_box`'s box, then ``refine``
        times again in the box their own fit gives (each pass halves what the box mapping
        leaves of MTCNN's box noise; measured in the README)."""
        points = self(image, dlib_box(mtcnn_box))
        for _ in range(refine):
            points = self(image, self.box_for(points))
        return points


def chip_geometry(points: np.ndarray, size: int = 150, padding: float = 0.25,
                  template: np.ndarray = TEMPLATE
                  ) -> tuple[tuple[float, float, float, float], float]:
    """dlib's ``get_face_chip_details`` for 5 landmarks: (rectangle l, t, r, b; angle)."""
    template = (padding + template) / (2 * padding + 1) * size
    m, t = similarity(template, np.asarray(points, dtype=np.float64))
    angle = math.atan2(m[1, 0], m[0, 0])
    scale = math.hypot(m[0, 0], m[1, 0])
    cx, cy = m @ np.array([size / 2, size / 2]) + t
    half = (size * scale - 1) / 2
    return (cx - half, cy - half, cx + half, cy + half), angle


def _area(rect: tuple[float, ...]) -> float:
    w, h = rect[2] - rect[0] + 1, rect[3] - rect[1] + 1
    return 0.0 if w <= 0 or h <= 0 else w * h


def _down(rect: tuple[float, ...]) -> tuple[float, ...]:
    """``pyramid_down<2>::rect_down``: ``p / 2 - (1.25, 0.75)``."""
    return (rect[0] / 2 - 1.25, rect[1] / 2 - 0.75, rect[2] / 2 - 1.25, rect[3] / 2 - 0.75)


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` on uint8 (H, W, C): a separable [1 4 6 4 1] filter and every
    second pixel, integer arithmetic, truncated."""
    v = image.astype(np.uint32)
    cols, rows = (v.shape[1] - 3) // 2, (v.shape[0] - 3) // 2
    if v.shape[0] <= 8 or v.shape[1] <= 8:
        return np.zeros((0, 0, image.shape[2]), np.uint8)

    def taps(x: np.ndarray, n: int, axis: int) -> np.ndarray:
        def at(k: int) -> np.ndarray:
            return np.take(x, np.arange(n) * 2 + k, axis=axis)
        return at(0) + 4 * at(1) + 6 * at(2) + 4 * at(3) + at(4)

    return (taps(taps(v, cols, 1), rows, 0) // 256).astype(np.uint8)


def face_chip(image: np.ndarray, points: np.ndarray, size: int = 150,
              padding: float = 0.25, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """``dlib.get_face_chip(image, shape, size, padding)`` for 5 landmarks (x, y): uint8
    (size, size, 3). ``template``: where the landmarks go (``MTCNN_TEMPLATE`` for MTCNN's)."""
    rect, angle = chip_geometry(points, size, padding, template)
    h, w = image.shape[:2]
    grow, probe = 2.0, _down(rect)
    while _area(probe) > size * size:
        probe, grow = _down(probe), grow * 2 + 2
    c, s = math.cos(angle), math.sin(angle)
    cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    corners = np.array([(rect[0], rect[1]), (rect[2], rect[1]), (rect[0], rect[3]),
                        (rect[2], rect[3])]) - (cx, cy)
    turned = corners @ np.array([[c, s], [-s, c]]) + (cx, cy)
    lo = np.maximum(turned.min(0) - grow, 0)
    hi = np.minimum(turned.max(0) + grow, (w - 1, h - 1))
    if (lo > hi).any():
        return np.zeros((size, size, 3), np.uint8)
    x0, y0, x1, y1 = (math.floor(v + 0.5) for v in (*lo, *hi))
    source = image[y0:y1 + 1, x0:x1 + 1]
    local = (rect[0] - x0, rect[1] - y0, rect[2] - x0, rect[3] - y0)
    while _area(_down(local)) > size * size:
        local, source = _down(local), pyramid_down(source)
    lcx, lcy = (local[0] + local[2]) / 2, (local[1] + local[3]) / 2
    tl, tr, bl = (np.array([x - lcx, y - lcy]) @ np.array([[c, s], [-s, c]]) + (lcx, lcy)
                  for x, y in ((local[0], local[1]), (local[2], local[1]),
                               (local[0], local[3])))
    return _bilinear(source, tl, (tr - tl) / (size - 1), (bl - tl) / (size - 1), size)


def _bilinear(source: np.ndarray, origin: np.ndarray, step_x: np.ndarray, step_y: np.ndarray,
              size: int) -> np.ndarray:
    """Sample ``source`` at ``origin + col·step_x + row·step_y``; black outside."""
    out = np.zeros((size, size, source.shape[2]), np.uint8)
    if source.size == 0:
        return out
    cols, rows = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    x = origin[0] + cols * step_x[0] + rows * step_y[0]
    y = origin[1] + cols * step_x[1] + rows * step_y[1]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    h, w = source.shape[:2]
    ok = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    xa, ya = x0.clip(0, w - 2), y0.clip(0, h - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    s = source.astype(np.float64)
    top = (1 - fx) * s[ya, xa] + fx * s[ya, xa + 1]
    bottom = (1 - fx) * s[ya + 1, xa] + fx * s[ya + 1, xa + 1]
    out[ok] = ((1 - fy) * top + fy * bottom)[ok].astype(np.uint8)
    return out


def chips_for(image: np.ndarray, faces: Any, predictor: ShapePredictor,
              alignment: str = "shape-predictor") -> np.ndarray:
    """dlib chips (N, 150, 150, 3) of the MTCNN ``faces`` found in ``image`` (uint8 RGB)."""
    if alignment not in ALIGNMENTS:
        import zoo_core as zoo

        raise zoo.InputError(f"alignment {alignment!r} is not one of {list(ALIGNMENTS)}")
    chips = []
    for box, marks in zip(faces.boxes.tolist(), faces.landmarks.tolist(), strict=True):
        if alignment == "mtcnn-template":
            chips.append(face_chip(image, np.array(marks), template=MTCNN_TEMPLATE))
        else:
            chips.append(face_chip(image, predictor.landmarks(image, box)))
    return np.stack(chips) if chips else np.zeros((0, 150, 150, 3), np.uint8)
