"""Input checks that models call inside ``forward``.

They are registered with ``torch.fx.wrap`` by the modules that call them, so symbolic tracing
(receptive fields, graph transforms) records them as single calls instead of tracing their
data-dependent branches; :func:`zoo_dilated.rf.passthrough` marks them geometry-neutral.
"""

from __future__ import annotations

from torch import Tensor

from zoo_core import InputError

from .rf import passthrough


@passthrough
def check_image(x: Tensor, in_chans: int, model: str, min_size: int = 1) -> Tensor:
    """Return ``x`` if it is a ``(B, in_chans, H, W)`` batch with ``H, W ≥ min_size``."""
    if x.dim() != 4 or x.shape[1] != in_chans:
        raise InputError(f"{model} takes images of shape (B, {in_chans}, H, W), got "
                            f"{tuple(x.shape)!r}; add a batch dimension with x[None] or set "
                            f"in_chans={x.shape[1] if x.dim() == 4 else '?'} in the config")
    if not x.is_floating_point():
        raise InputError(f"{model} takes float images, got dtype {x.dtype!r}; convert with "
                         "x.float() (and scale uint8 pixels to [0, 1])")
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise InputError(f"{model}: input size {h}×{w} is smaller than the network's minimum "
                            f"{min_size}×{min_size} (its layers would produce empty outputs); "
                            "resize or pad the input, or use padding='same'")
    return x
