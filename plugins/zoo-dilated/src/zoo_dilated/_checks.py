"""Input checks that models call inside ``forward``.

They are registered with ``torch.fx.wrap`` by the modules that call them, so symbolic tracing
(receptive fields, graph transforms) records them as single calls instead of tracing their
data-dependent branches; :func:`zoo_dilated.rf.passthrough` marks them geometry-neutral.
"""

from __future__ import annotations

from torch import Tensor

import zoo_core as zoo
from zoo_core import InputError

from .rf import passthrough


@passthrough
def check_image(x: Tensor, in_chans: int, model: str, min_size: int = 1) -> Tensor:
    """Return ``x`` if it is a ``(B, in_chans, H, W)`` batch with ``H, W ≥ min_size``."""
    zoo.checks.tensor(x, f"{model}'s input", shape=("B", in_chans, "H", "W"),
                      fix="add a batch dimension with x[None] or set in_chans="
                      f"{x.shape[1] if isinstance(x, Tensor) and x.dim() == 4 else '?'} "
                      "in the config")
    zoo.checks.tensor(x, f"{model}'s input", dtype="float",
                      fix="convert with x.float() (and scale uint8 pixels to [0, 1])")
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise InputError(f"{model}: input size {h}×{w} is smaller than the network's minimum "
                            f"{min_size}×{min_size} (its layers would produce empty outputs); "
                            "resize or pad the input, or use padding='same'")
    return x
