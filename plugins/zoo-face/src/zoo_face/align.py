"""Face alignment: a 5-landmark similarity transform onto a canonical template, then a warp.

The similarity ``q = c R p + t`` that best maps the detected landmarks ``p_k`` onto the
template ``q_k`` in the least-squares sense is Umeyama's closed form (Umeyama, 1991,
"Least-Squares Estimation of Transformation Parameters Between Two Point Patterns", eq. 34–42):
with centred points, ``Σ = (1/K) Σ_k q̃_k p̃_kᵀ = U D Vᵀ``,
``S = diag(1, sign(det U · det V))`` (the reflection guard: R stays a rotation even when the
points look mirrored), ``R = U S Vᵀ``, ``c = tr(D S) / σ_p²``, ``t = μ_q − c R μ_p``.

The warp samples each output pixel at ``M⁻¹ q`` with ``affine_grid`` + ``grid_sample``
(bilinear, zero padding), batched; pixel centres sit at integer coordinates, as in OpenCV.
Templates: the 112×112 five-point template of ArcFace (eyes, nose tip, mouth corners), its
96×112 crop (x − 8) used by SphereFace/CosFace, and a 128×128 scaling of it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import zoo_core as zoo

_ARCFACE_112 = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
                (41.5493, 92.3655), (70.7299, 92.2041))

TEMPLATES: dict[str, tuple[tuple[int, int], tuple[tuple[float, float], ...]]] = {
    "112x112": ((112, 112), _ARCFACE_112),
    "96x112": ((112, 96), tuple((x - 8.0, y) for x, y in _ARCFACE_112)),
    "128x128": ((128, 128), tuple((x * 128 / 112, y * 128 / 112) for x, y in _ARCFACE_112)),
}
"""Template name → ((height, width), five (x, y) points: left eye, right eye, nose, mouth
left, mouth right)."""


def template(name: str = "112x112") -> tuple[tuple[int, int], Tensor]:
    """The output size (H, W) and landmarks (5, 2) of a named template."""
    if name not in TEMPLATES:
        raise zoo.InputError(f"unknown alignment template {name!r}; valid: {sorted(TEMPLATES)}")
    size, points = TEMPLATES[name]
    return size, torch.tensor(points, dtype=torch.float64)


def umeyama(src: Tensor, dst: Tensor, *, scale: bool = True) -> Tensor:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src onto dst.

    Args:
        src: points (N, K, 2) or (K, 2).
        dst: points (N, K, 2) or (K, 2), broadcast against ``src``.
        scale: estimate the scale (``False`` fixes c = 1: a rigid transform).

    Returns:
        Matrices (N, 2, 3) (or (2, 3) for unbatched input), ``[c R | t]`` in float64, so that
        ``dst ≈ src @ (c R)ᵀ + t``.
    """
    single = src.dim() == 2 and dst.dim() == 2
    src, dst = torch.as_tensor(src).double(), torch.as_tensor(dst).double()
    src, dst = torch.broadcast_tensors(src if src.dim() == 3 else src[None],
                                       dst if dst.dim() == 3 else dst[None])
    if src.shape[-1] != 2 or src.shape[1] < 2:
        raise zoo.InputError(f"points must be shaped (N, K, 2) with K >= 2, got "
                             f"{tuple(src.shape)!r}")
    mu_s, mu_d = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)  # (N, 1, 2)
    ps, qs = src - mu_s, dst - mu_d                                    # (N, K, 2)
    var_s = ps.pow(2).sum((1, 2)) / src.shape[1]                       # (N,)
    if bool((var_s <= 1e-12).any()):
        raise zoo.InputError("all source points of a sample coincide: a similarity transform "
                             "is undefined; check the landmark detector's output")
    cov = qs.transpose(1, 2) @ ps / src.shape[1]                       # (N, 2, 2)
    u, d, vh = torch.linalg.svd(cov)
    s = torch.ones_like(d)
    s[:, 1] = torch.where(torch.linalg.det(u) * torch.linalg.det(vh) < 0, -1.0, 1.0)
    rot = u @ torch.diag_embed(s) @ vh                                 # (N, 2, 2)
    c = (d * s).sum(1) / var_s if scale else torch.ones_like(var_s)    # (N,)
    a = c[:, None, None] * rot
    t = mu_d.squeeze(1) - (a @ mu_s.transpose(1, 2)).squeeze(2)        # (N, 2)
    out = torch.cat([a, t[:, :, None]], 2)                             # (N, 2, 3)
    return out[0] if single else out


def _to_normalised(h: int, w: int, dtype: torch.dtype, device: Any) -> Tensor:
    """3×3 map from pixel (x, y) to ``grid_sample``'s [−1, 1] coordinates (align_corners=False)."""
    return torch.tensor([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]],
                        dtype=dtype, device=device)


def warp_affine(images: Tensor, matrices: Tensor, size: tuple[int, int]) -> Tensor:
    """Warp images by pixel-space affine maps (source → output), batched.

    Args:
        images: (N, C, H, W) floating images.
        matrices: (N, 2, 3) or (2, 3) maps from source pixel coordinates to output ones.
        size: output (height, width).

    Returns:
        (N, C, height, width), bilinear, zeros outside the source.
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise zoo.InputError(f"images must be a floating (N, C, H, W) tensor, got shape "
                             f"{tuple(images.shape)!r} and dtype {images.dtype}")
    n, _, h, w = images.shape
    m = matrices.to(torch.float64)
    m = (m if m.dim() == 3 else m[None]).expand(n, 2, 3)
    last = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(n, 1, 3)
    full = torch.cat([m.cpu(), last], 1)                               # (N, 3, 3)
    out_h, out_w = size
    theta = (_to_normalised(h, w, torch.float64, "cpu") @ torch.linalg.inv(full)
             @ torch.linalg.inv(_to_normalised(out_h, out_w, torch.float64, "cpu")))
    theta = theta[:, :2].to(images.dtype).to(images.device)             # (N, 2, 3)
    grid = F.affine_grid(theta, [n, images.shape[1], out_h, out_w], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def align_faces(images: Tensor, landmarks: Tensor, template_name: str = "112x112",
                ) -> tuple[Tensor, Tensor]:
    """Align faces to a canonical template from five landmarks each.

    Args:
        images: (N, C, H, W) floating images.
        landmarks: (N, 5, 2) pixel (x, y) of left eye, right eye, nose, mouth left and right.
        template_name: ``"112x112"`` (ArcFace), ``"96x112"`` (SphereFace) or ``"128x128"``.

    Returns:
        Aligned crops (N, C, H_t, W_t) and the (N, 2, 3) similarity matrices used.

    Example:
        >>> crops, m = align_faces(images, detector_landmarks)        # (N, 3, 112, 112)
    """
    landmarks = torch.as_tensor(landmarks)
    if landmarks.dim() != 3 or landmarks.shape[1:] != (5, 2):
        raise zoo.InputError(f"landmarks must be shaped (N, 5, 2), got "
                             f"{tuple(landmarks.shape)!r}; for one face use landmarks[None]")
    if images.dim() != 4 or images.shape[0] != landmarks.shape[0]:
        raise zoo.InputError(f"images {tuple(images.shape)!r} and landmarks "
                             f"{tuple(landmarks.shape)!r} must share the batch size N")
    size, dst = template(template_name)
    matrices = umeyama(landmarks, dst)
    return warp_affine(images, matrices, size), matrices
