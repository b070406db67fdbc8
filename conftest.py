"""Session-wide test setup for zoo-core and every plugin.

Triton reads ``TRITON_INTERPRET`` when a ``@triton.jit`` function is defined, and
``triton.language`` defines some at import; torch may import Triton early (dynamo), so the
interpreter is chosen here, before any test module runs, whenever no GPU is present.
"""

import os

if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"
