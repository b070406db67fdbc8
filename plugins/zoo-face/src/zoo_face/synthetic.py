"""Synthetic identities: procedurally drawn faces for training and verifying without a dataset.

Each identity is a fixed draw (seeded by its id) of ~40 shape and appearance parameters: face
oval, skin and hair colour, hairline, eye spacing/height/size/colour, brows, nose, mouth and a
skin texture of two gratings. An image of an identity renders those parts as soft shapes on a
coordinate grid seen through a random *pose* (in-plane rotation, scale, translation, and a yaw
that foreshortens the face and shifts the inner features), under random *lighting* (gain,
directional gradient, colour cast), with *noise* and *blur*. Identities 0…k−1 can train a
model and identities k… stay unseen for verification, as in the open-set protocol of face
recognition (train and test identities disjoint).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

import zoo_core as zoo

# (low, high) of each identity parameter, drawn uniformly
_RANGES: dict[str, tuple[float, float]] = {
    "face_w": (0.55, 0.78), "face_h": (0.72, 0.92), "chin": (-0.15, 0.2),
    "skin_r": (0.35, 0.95), "skin_g": (0.25, 0.8), "skin_b": (0.2, 0.7),
    "hair_r": (0.0, 0.7), "hair_g": (0.0, 0.5), "hair_b": (0.0, 0.4), "hairline": (-0.8, -0.4),
    "hair_side": (0.0, 0.25),
    "eye_x": (0.18, 0.36), "eye_y": (-0.3, -0.05), "eye_r": (0.05, 0.12), "eye_flat": (0.4, 1.0),
    "iris_r": (0.0, 0.6), "iris_g": (0.0, 0.6), "iris_b": (0.0, 0.7),
    "brow_y": (0.1, 0.22), "brow_w": (0.1, 0.2), "brow_t": (0.015, 0.05), "brow_tilt": (-0.4, 0.4),
    "nose_len": (0.12, 0.35), "nose_w": (0.05, 0.14), "nose_dark": (0.1, 0.4),
    "mouth_y": (0.3, 0.58), "mouth_w": (0.12, 0.33), "mouth_t": (0.02, 0.07),
    "mouth_curve": (-0.4, 0.4), "lip_r": (0.4, 0.9), "lip_g": (0.1, 0.4), "lip_b": (0.1, 0.4),
    "tex_f1": (3.0, 9.0), "tex_o1": (0.0, math.pi), "tex_a1": (0.0, 0.12),
    "tex_f2": (3.0, 9.0), "tex_o2": (0.0, math.pi), "tex_a2": (0.0, 0.12),
    "beard": (0.0, 1.0), "glasses": (0.0, 1.0),
}
PARAMS = tuple(_RANGES)


def identity_params(ids: Tensor, seed: int = 0) -> dict[str, Tensor]:
    """The parameters (each (N,)) of identities ``ids``; the same id always gives the same face."""
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if bool((ids < 0).any()):
        raise zoo.InputError(f"identity ids must be >= 0, got {int(ids.min())!r}")
    rows = []
    for i in ids.tolist():
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        rows.append(torch.rand(len(PARAMS), generator=g))
    u = torch.stack(rows)                                                   # (N, P)
    lo = torch.tensor([r[0] for r in _RANGES.values()])
    hi = torch.tensor([r[1] for r in _RANGES.values()])
    v = lo + (hi - lo) * u
    return {k: v[:, j] for j, k in enumerate(PARAMS)}


def _soft(d: Tensor, sharp: float) -> Tensor:
    """Soft indicator of ``d < 0`` (d: signed distance)."""
    return torch.sigmoid(-d * sharp)


def _ellipse(x: Tensor, y: Tensor, cx: Tensor, cy: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 - 1


def render(p: dict[str, Tensor], size: int, pose: dict[str, Tensor]) -> Tensor:
    """Render identities ``p`` seen through ``pose`` as (N, 3, size, size) images in [0, 1]."""
    dev = p["face_w"].device
    lin = (torch.arange(size, device=dev) + 0.5) / size * 2 - 1
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")                        # (S, S)
    c, s = torch.cos(pose["angle"]), torch.sin(pose["angle"])
    v = lambda t: t[:, None, None]  # noqa: E731  (N,) -> (N, 1, 1)
    px, py = gx - v(pose["tx"]), gy - v(pose["ty"])
    x = (v(c) * px + v(s) * py) / v(pose["scale"])                          # (N, S, S)
    y = (-v(s) * px + v(c) * py) / v(pose["scale"])
    yaw = v(pose["yaw"])
    x = x / torch.cos(yaw)                                                  # foreshortening
    shift = 0.35 * torch.sin(yaw)                                           # inner features
    sharp = size / 2.0

    face = _soft(_ellipse(x, y, 0, v(p["chin"]) * 0.2, v(p["face_w"]),
                          v(p["face_h"]) + (y > 0) * v(p["chin"]) * 0.3), sharp)
    skin = torch.stack([p["skin_r"], p["skin_g"], p["skin_b"]], 1)[:, :, None, None]
    tex = 1 + v(p["tex_a1"]) * torch.sin(v(p["tex_f1"]) * 3 * (
        x * torch.cos(v(p["tex_o1"])) + y * torch.sin(v(p["tex_o1"]))))
    tex = tex + v(p["tex_a2"]) * torch.sin(v(p["tex_f2"]) * 3 * (
        x * torch.cos(v(p["tex_o2"])) - y * torch.sin(v(p["tex_o2"]))))
    img = 0.15 + (skin * tex[:, None] - 0.15) * face[:, None]               # background 0.15

    hair = _soft(y - v(p["hairline"]) - 0.1 * x**2, sharp) * _soft(
        _ellipse(x, y, 0, -0.05, v(p["face_w"]) + v(p["hair_side"]) + 0.05,
                 v(p["face_h"]) + 0.12), sharp)
    hair = torch.maximum(hair, face * _soft(y - v(p["hairline"]) - 0.1 * x**2, sharp))
    img = _paint(img, hair, [p["hair_r"], p["hair_g"], p["hair_b"]])
    beard = face * (p["beard"] > 0.7)[:, None, None] * _soft(0.25 - y, sharp)
    img = _paint(img, beard * 0.8, [p["hair_r"], p["hair_g"], p["hair_b"]])

    for side in (-1, 1):
        ex = side * v(p["eye_x"]) + shift
        white = _soft(_ellipse(x, y, ex, v(p["eye_y"]), v(p["eye_r"]),
                               v(p["eye_r"]) * v(p["eye_flat"])), sharp)
        img = _paint(img, white, [torch.full_like(p["eye_r"], 0.95)] * 3)
        iris = _soft(_ellipse(x, y, ex, v(p["eye_y"]), v(p["eye_r"]) * 0.5,
                              v(p["eye_r"]) * 0.5), sharp)
        img = _paint(img, iris * white, [p["iris_r"], p["iris_g"], p["iris_b"]])
        by = v(p["eye_y"]) - v(p["brow_y"]) + side * v(p["brow_tilt"]) * (x - ex) * 0.5
        brow = _soft(torch.abs(y - by) - v(p["brow_t"]), sharp) * _soft(
            torch.abs(x - ex) - v(p["brow_w"]), sharp)
        img = _paint(img, brow, [p["hair_r"], p["hair_g"], p["hair_b"]])
        glasses = (p["glasses"] > 0.75)[:, None, None] * _soft(torch.abs(
            torch.sqrt(((x - ex) ** 2 + (y - v(p["eye_y"])) ** 2).clamp_min(1e-8))
            - v(p["eye_r"]) - 0.06) - 0.015, sharp)
        img = _paint(img, glasses, [torch.full_like(p["eye_r"], 0.05)] * 3)

    nose = _soft(torch.abs(x - shift * 1.2) - v(p["nose_w"]) * (y - v(p["eye_y"])).clamp(0, 1)
                 / v(p["nose_len"]), sharp) * _soft(y - v(p["eye_y"]) - v(p["nose_len"]), sharp)
    nose = nose * _soft(v(p["eye_y"]) - y, -sharp)
    img = img * (1 - v(p["nose_dark"])[:, None] * nose[:, None] * 0.6)
    mx = x - shift
    my = y - v(p["mouth_y"]) - v(p["mouth_curve"]) * (mx / v(p["mouth_w"])) ** 2 * 0.1
    mouth = _soft(torch.abs(my) - v(p["mouth_t"]), sharp) * _soft(torch.abs(mx) - v(p["mouth_w"]),
                                                                  sharp)
    return _paint(img, mouth, [p["lip_r"], p["lip_g"], p["lip_b"]]).clamp(0, 1)


def _paint(img: Tensor, mask: Tensor, rgb: list[Tensor]) -> Tensor:
    color = torch.stack(rgb, 1)[:, :, None, None]                           # (N, 3, 1, 1)
    return img + (color - img) * mask[:, None]


def random_pose(n: int, g: torch.Generator, strength: float = 1.0) -> dict[str, Tensor]:
    """Pose draws: rotation ±15°, scale 0.88–1.12, shift ±0.08, yaw ±35° (times strength)."""
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=g)  # noqa: E731
    k = strength
    return {"angle": u(-0.26 * k, 0.26 * k), "scale": 1 + u(-0.12 * k, 0.12 * k),
            "tx": u(-0.08 * k, 0.08 * k), "ty": u(-0.08 * k, 0.08 * k),
            "yaw": u(-0.6 * k, 0.6 * k)}


def photometric(img: Tensor, g: torch.Generator, strength: float = 1.0) -> Tensor:
    """Lighting (gain, gradient, colour cast), Gaussian blur and noise on (N, 3, S, S)."""
    n, _, size, _ = img.shape
    r = lambda *shape: torch.rand(*shape, generator=g).to(img.device)  # noqa: E731
    k = strength
    gain = 1 + (r(n, 1, 1, 1) - 0.5) * 0.8 * k
    cast = 1 + (r(n, 3, 1, 1) - 0.5) * 0.3 * k
    lin = torch.linspace(-1, 1, size, device=img.device)
    theta = r(n) * 2 * math.pi
    ramp = torch.cos(theta)[:, None, None] * lin[None, None, :] + \
        torch.sin(theta)[:, None, None] * lin[None, :, None]
    light = 1 + (r(n, 1, 1) * 0.6 * k) * ramp
    img = img * gain * cast * light[:, None]
    sigma = 0.3 + r(n) * 1.0 * k                                            # blur σ in pixels
    t = torch.arange(-2, 3, dtype=torch.float32, device=img.device)
    kern = torch.exp(-t[None] ** 2 / (2 * sigma[:, None] ** 2))
    kern = kern / kern.sum(1, keepdim=True)                                 # (N, 5)
    flat = img.transpose(0, 1).reshape(1, 3 * n, size, size)
    kh = kern.repeat(3, 1)[:, None, None, :]                                # (3N, 1, 1, 5)
    flat = F.conv2d(F.pad(flat, (2, 2, 0, 0), mode="replicate"), kh, groups=3 * n)
    flat = F.conv2d(F.pad(flat, (0, 0, 2, 2), mode="replicate"), kh.transpose(2, 3),
                    groups=3 * n)
    img = flat.reshape(3, n, size, size).transpose(0, 1)
    noise = torch.randn(img.shape, generator=g).to(img.device)
    img = img + noise * (0.02 + 0.06 * k * r(n, 1, 1, 1))
    return img.clamp(0, 1)


class SyntheticFaces:
    """Images of procedurally drawn identities.

    Args:
        num_identities: how many identities exist (ids 0…num_identities−1).
        size: image side in pixels.
        seed: selects the population of identities.
        strength: scales pose and photometric variation (0 = canonical images).

    Example:
        >>> data = SyntheticFaces(1000, size=32)
        >>> images, labels = data.batch(torch.randint(0, 800, (128,)), generator)
    """

    def __init__(self, num_identities: int, size: int = 32, seed: int = 0,
                 strength: float = 1.0) -> None:
        if num_identities < 2:
            raise zoo.ConfigError(f"num_identities={num_identities!r} must be at least 2")
        self.num_identities, self.size, self.seed, self.strength = (
            num_identities, size, seed, strength)
        self._params = identity_params(torch.arange(num_identities), seed)

    def batch(self, ids: Tensor, generator: torch.Generator,
              device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Images (N, 3, S, S) normalised to [−1, 1] of identities ``ids``, and the ids.

        Random draws come from ``generator`` (on the CPU); rendering runs on ``device``.
        """
        ids = torch.as_tensor(ids, dtype=torch.long)
        if bool(((ids < 0) | (ids >= self.num_identities)).any()):
            raise zoo.InputError(f"ids must lie in [0, {self.num_identities})")
        p = {k: v[ids].to(device) for k, v in self._params.items()}
        pose = {k: v.to(device) for k, v in
                random_pose(ids.numel(), generator, self.strength).items()}
        img = photometric(render(p, self.size, pose), generator, self.strength)
        return img * 2 - 1, ids.to(img.device)

    def pairs(self, ids: Tensor, num_pairs: int, generator: torch.Generator,
              device: torch.device | str | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Verification pairs among ``ids``: half genuine, half impostor, interleaved.

        Returns:
            Images A and B (num_pairs, 3, S, S) and labels (num_pairs,) 1 = same identity.
        """
        ids = torch.as_tensor(ids, dtype=torch.long)
        a = ids[torch.randint(0, ids.numel(), (num_pairs,), generator=generator)]
        other = ids[torch.randint(0, ids.numel(), (num_pairs,), generator=generator)]
        same = torch.arange(num_pairs) % 2 == 0
        collide = other == a
        while bool((collide & ~same).any()):
            redraw = ids[torch.randint(0, ids.numel(), (num_pairs,), generator=generator)]
            other = torch.where(collide, redraw, other)
            collide = other == a
        b = torch.where(same, a, other)
        return (self.batch(a, generator, device)[0], self.batch(b, generator, device)[0],
                same.long())
