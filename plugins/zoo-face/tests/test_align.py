"""Alignment: Umeyama against known transforms and an independent least-squares fit; warping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from zoo_face.align import TEMPLATES, align_faces, template, umeyama, warp_affine

import zoo_core as zoo


def similarity(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def test_recovers_a_known_similarity_batched():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (4, 5, 2))
    truth = [similarity(a, s, tx, ty) for a, s, tx, ty in
             [(0.3, 0.5, 10, -4), (-1.2, 1.7, 0, 30), (math.pi * 0.9, 0.8, -50, 5),
              (0.0, 1.0, 3, 3)]]
    dst = np.stack([apply(m, p) for m, p in zip(truth, src, strict=True)])
    got = umeyama(torch.tensor(src), torch.tensor(dst))
    np.testing.assert_allclose(got.numpy(), np.stack(truth), atol=1e-9)


def lstsq_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least squares over [a −b tx; b a ty] (a proper similarity by construction)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
        rhs += [u, v]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


@pytest.mark.parametrize("mirror", [False, True])
def test_noisy_points_match_linear_least_squares_and_reflection_is_guarded(mirror):
    rng = np.random.default_rng(1)
    _, tmpl = template("112x112")
    dst = tmpl.numpy()
    src = apply(similarity(0.4, 2.0, 30, 60), dst) + rng.normal(0, 2.0, (5, 2))
    if mirror:
        src[:, 0] = -src[:, 0]          # a mirrored face: the unguarded optimum is a reflection
    got = umeyama(torch.tensor(src), torch.tensor(dst)).numpy()
    assert np.linalg.det(got[:, :2]) > 0
    np.testing.assert_allclose(got, lstsq_similarity(src, dst), atol=1e-8)


def test_rigid_mode_keeps_unit_scale():
    src = np.random.default_rng(2).uniform(0, 50, (6, 2))
    dst = apply(similarity(0.7, 1.0, 5, 6), src)
    got = umeyama(torch.tensor(src), torch.tensor(dst) * 1.0, scale=False).numpy()
    np.testing.assert_allclose(got, similarity(0.7, 1.0, 5, 6), atol=1e-9)


def test_warp_matches_direct_bilinear_sampling():
    rng = np.random.default_rng(3)
    img = rng.uniform(0, 1, (2, 40, 50))
    m = similarity(0.25, 0.8, 4.0, -3.0)
    out = warp_affine(torch.tensor(img)[None], torch.tensor(m), (30, 36))[0].numpy()
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
    ys, xs = np.mgrid[0:30, 0:36]
    src = inv[:2, :2] @ np.stack([xs.ravel(), ys.ravel()]) + inv[:2, 2:]   # (x, y)
    for ch in range(2):
        exp = ndimage.map_coordinates(img[ch], [src[1], src[0]], order=1, mode="grid-constant",
                                      cval=0.0).reshape(30, 36)
        np.testing.assert_allclose(out[ch], exp, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_align_moves_landmarks_onto_the_template(name):
    (h, w), tmpl = template(name)
    truth = similarity(-0.5, 0.6, -40.0, 30.0)         # image → template
    inv = np.linalg.inv(np.vstack([truth, [0, 0, 1]]))[:2]
    marks = apply(inv, tmpl.numpy())                     # where the landmarks sit in the image
    ys, xs = np.mgrid[0:260, 0:240]
    img = sum(np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 3.0**2)) for x, y in marks)
    crops, mats = align_faces(torch.tensor(img)[None, None].repeat(2, 1, 1, 1),
                              torch.tensor(marks)[None].repeat(2, 1, 1), name)
    assert crops.shape == (2, 1, h, w)
    np.testing.assert_allclose(mats[1].numpy(), truth, atol=1e-9)
    out = crops[0, 0].numpy()
    for x, y in tmpl.numpy():                            # blob centroids land on the template
        x0, y0 = int(round(x)), int(round(y))
        win = out[y0 - 4:y0 + 5, x0 - 4:x0 + 5]
        yy, xx = np.mgrid[y0 - 4:y0 + 5, x0 - 4:x0 + 5]
        assert abs((win * xx).sum() / win.sum() - x) < 0.35
        assert abs((win * yy).sum() / win.sum() - y) < 0.35


@pytest.mark.parametrize("shape", [(5, 2), (2, 4, 2), (2, 5, 3)])
def test_landmarks_must_be_n_5_2(shape):
    with pytest.raises(zoo.InputError, match=r"\(N, 5, 2\)"):
        align_faces(torch.zeros(2, 3, 20, 20), torch.zeros(shape))


def test_unknown_template_lists_valid_ones():
    with pytest.raises(zoo.InputError, match="112x112"):
        template("112")
