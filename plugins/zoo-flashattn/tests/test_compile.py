"""The Triton kernels compile for a Hopper GPU (sm_90) with our launcher's real arguments.

The interpreter (test_attention.py) checks the numbers but never runs Triton's compiler; this
compiles each launch through ttir … cubin on the CPU, in a subprocess without
``TRITON_INTERPRET`` (compile_for_gpu.py), so the compiled path is checked where no GPU is.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).with_name("compile_for_gpu.py")
KERNELS = {"fwd_kernel", "delta_kernel", "dkdv_kernel", "dq_kernel"}


def _nvidia_backend() -> bool:
    try:
        from triton.backends import backends
    except ImportError:
        return False
    return "nvidia" in backends


@pytest.mark.skipif(not _nvidia_backend(), reason="Triton's NVIDIA backend is not installed")
@pytest.mark.parametrize("case", [
    "options_fp16_d80",
    pytest.param("causal_fp16_d64", marks=pytest.mark.slow),
    pytest.param("varlen_fp32_d32", marks=pytest.mark.slow),
])
def test_kernels_compile_for_sm90(case):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, str(SCRIPT), case], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert {r["kernel"] for r in rows} == KERNELS
    assert all(r["shared"] > 0 and r["ptx_lines"] > 100 for r in rows)
