"""Device run of zoo-face: CUDA tests, end-to-end training on GPU, the CPU benchmark on 2 threads.

    PYTHONPATH=.:plugins/zoo-face/src python3 benchmarks/face_device.py OUTDIR

For a machine where the workspace is not installed: registers the plugin by hand.
"""

from __future__ import annotations

import runpy
import sys
import time

import zoo_core as zoo


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    if "loss:arcface" not in zoo.REGISTRY.components():
        import zoo_face.plugin

        zoo.register_plugin(zoo_face.plugin, "face")
    import pytest
    import torch

    t0 = time.time()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts=", "-m", "gpu",
                      "plugins/zoo-face/tests/test_gpu.py"])
    print(f"gpu tests rc={rc} in {time.time() - t0:.0f}s", flush=True)
    torch.set_num_threads(2)
    sys.argv = ["face_cpu.py", "--repeats", "5"]
    runpy.run_path("benchmarks/face_cpu.py", run_name="__main__")
    print(f"cpu benchmark done at {time.time() - t0:.0f}s", flush=True)
    torch.set_num_threads(8)
    sys.argv = ["face_e2e.py", "--json", f"{out}/e2e.json"]
    runpy.run_path("benchmarks/face_e2e.py", run_name="__main__")
    print(f"all done at {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
