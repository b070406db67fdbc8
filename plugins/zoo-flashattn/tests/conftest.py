"""Run the Triton kernels in Triton's CPU interpreter when no GPU is present.

``TRITON_INTERPRET`` is read when a kernel is decorated, i.e. when zoo_flashattn's kernel
modules are first imported, so it is set here, before any test imports them.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
