"""Images in, float RGB tensors out: the one place where detector inputs are checked.

Accepted, one image or a list (sizes may differ):

* PIL images: ``RGB``; ``L`` / ``LA`` / ``P`` / ``RGBA`` / ``CMYK`` … converted to RGB (alpha
  dropped); 16-bit and float modes (``I;16``, ``I``, ``F``) refused.
* numpy arrays ``(H, W, 3)``, ``(H, W, 4)`` (alpha dropped) or ``(H, W)`` (grey), uint8; a
  batch ``(B, H, W, 3)``. Float arrays must hold values in [0, 1].
* torch tensors ``(3, H, W)``, ``(4, H, W)``, ``(1, H, W)`` or a batch ``(B, C, H, W)``, uint8
  or float in [0, 1] (torchvision's ``to_tensor`` convention).

Everything comes out as float tensors ``(3, H, W)`` holding 0…255, the detector's scale.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import zoo_core as zoo

_FIX_DEPTH = ("convert it to 8 bits first, e.g. (array >> 8).astype(numpy.uint8) for 16-bit "
              "data, or pass floats in [0, 1]")


MAX_PIXELS = 50_000_000
"""Images larger than this (width x height) are refused before decoding; ``--max-pixels``."""


def open_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> Any:
    """A decoded PIL image; its size is read from the header and checked before decoding."""
    from PIL import Image, UnidentifiedImageError

    path = str(path)
    if Path(path).is_dir():
        raise zoo.InputError(f"{path!r} is a folder, not an image file; name the image files")
    pil_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():  # the size is checked below, against our own limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None
            try:
                opened = Image.open(path)  # reads the header only
            finally:
                Image.MAX_IMAGE_PIXELS = pil_limit
            with opened as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise zoo.InputError(
                        f"{path!r} is {width}x{height} ({width * height:,} pixels), more than "
                        f"--max-pixels {max_pixels:,}; shrink the image or raise --max-pixels")
                img.load()
                return img
    except FileNotFoundError:
        raise zoo.InputError(f"no image file {path!r}") from None
    except UnidentifiedImageError:
        raise zoo.InputError(f"{path!r} is not an image PIL can read") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL's words for a damaged file
        raise zoo.InputError(f"{path!r} cannot be decoded, it is damaged or truncated "
                             f"({e}); check the file") from None


def _from_pil(image: Any) -> Tensor:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        raise zoo.InputError(f"PIL image mode {image.mode!r} (16-bit or 32-bit) is not "
                             f"supported: {_FIX_DEPTH}")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def _channels_first(t: Tensor, layout: str) -> Tensor:
    """(C, H, W) or (H, W, C) or (H, W) → (3, H, W), same dtype."""
    if t.dim() == 2:
        t = t[None]
    elif layout == "hwc":
        t = t.permute(2, 0, 1)
    c = t.shape[0]
    if c == 1:
        return t.expand(3, *t.shape[1:])
    if c in (3, 4):
        return t[:3]
    where = "last" if layout == "hwc" else "first"
    raise zoo.InputError(f"an image needs 1, 3 or 4 channels ({where} axis), got shape "
                         f"{tuple(t.shape)!r}; pass RGB, RGBA or greyscale")


def _scaled(t: Tensor) -> Tensor:
    """uint8 → float 0…255; floats in [0, 1] → ×255; anything else refused."""
    if t.dtype == torch.uint8:
        return t
    if t.is_floating_point():
        if t.numel() and (float(t.min()) < 0.0 or float(t.max()) > 1.0):
            raise zoo.InputError(
                f"float images are read as values in [0, 1], got range [{float(t.min())!r}, "
                f"{float(t.max())!r}]; pass uint8 0–255 or divide by 255")
        return t * 255.0
    raise zoo.InputError(f"image dtype {t.dtype} is not supported (only uint8 or float in "
                         f"[0, 1]): {_FIX_DEPTH}")


def _one(image: Any, layout: str) -> list[Tensor]:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 and image.dtype.kind != "f":
            raise zoo.InputError(f"image array dtype {image.dtype} is not supported: "
                                 f"{_FIX_DEPTH}")
        image = torch.from_numpy(np.array(image, copy=not image.flags.writeable, order="C"))
        layout = "hwc"
    if isinstance(image, Tensor):
        if image.dim() == 4:
            return [_channels_first(t, layout) for t in image]
        if image.dim() in (2, 3):
            return [_channels_first(image, layout)]
        raise zoo.InputError(f"an image tensor must have 2, 3 or 4 dimensions, got shape "
                             f"{tuple(image.shape)!r}")
    if hasattr(image, "mode") and hasattr(image, "convert"):
        return [_from_pil(image)]
    raise zoo.InputError(f"cannot read an image from a {type(image).__name__}; pass a PIL "
                         "image, a uint8 (H, W, 3) numpy array or a (3, H, W) tensor")


def to_tensors(images: Any, device: Any = None, dtype: torch.dtype | None = torch.float32
               ) -> list[Tensor]:
    """RGB tensors (3, H, W) with values 0…255, one per image, in ``dtype`` (``None``: uint8
    images stay uint8, the others are float).

    Example:
        >>> [t.shape for t in to_tensors([Image.open("a.jpg"), np.zeros((50, 80, 3), "uint8")])]
        [torch.Size([3, 512, 600]), torch.Size([3, 50, 80])]
    """
    items = images if isinstance(images, (list, tuple)) else [images]
    out = []
    for item in items:
        for t in _one(item, "chw"):
            if t.shape[1] == 0 or t.shape[2] == 0:
                raise zoo.InputError(f"empty image of shape {tuple(t.shape)!r}")
            out.append(_scaled(t).to(device=device, dtype=dtype))
    return out


def check_crops(images: Any, channels: int, size: int, name: str = "images") -> None:
    """Raise a :class:`zoo.InputError` unless ``images`` is a float batch (B, channels, size,
    size): a shape check only, so a forward that calls it neither syncs nor breaks a graph."""
    zoo.checks.tensor(images, name, dtype="float", fix="convert with .float()")
    zoo.checks.tensor(images, name, shape=(None, channels, size, size),
                      fix=f"resize the crops to {size}x{size} with {channels} channels")


def bad_crops(channels: int, size: int) -> list[dict[str, Tensor]]:
    """Forward kwargs a crop model refuses: a wrong channel count, no batch dim, uint8."""
    return [{"images": torch.randn(2, channels + 1, size, size)},
            {"images": torch.randn(channels, size, size)},
            {"images": torch.zeros(2, channels, size, size, dtype=torch.uint8)}]
