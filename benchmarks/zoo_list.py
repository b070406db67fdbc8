"""`zoo list` cold wall time next to `python -c "import torch"`, measured in the same run.

Goal: `zoo list` ≤ 0.5 s (issue 15; issue 19 aims at ≤ 0.2 s on a quiet machine) and torch
never imported. Each command runs in a fresh process (cold interpreter; the OS file cache is
warm after the warm-up, as it is for users); peer and ours alternate.

    uv run --all-packages python benchmarks/zoo_list.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench  # noqa: E402


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    zoo = str(Path(sys.executable).with_name("zoo"))
    probe = ("import sys\nfrom zoo_core.cli import main\nmain(['list'])\n"
             "print('torch' in sys.modules, file=sys.stderr)")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              check=True).stderr.strip().splitlines()[-1]
    if imported != "False":
        sys.exit("`zoo list` imported torch: a plugin's entry module is heavy (see `zoo plugins`)")

    bench = Bench("zoo_list")
    py = sys.executable
    # baselines, not peers: a bare interpreter and `import torch` are no model zoo
    cold = bench.compare("zoo list, cold process", unit="s", repeats=args.repeats, baseline=True,
                         peer=("python -c 'import torch'", lambda: run([py, "-c", "import torch"])),
                         ours=lambda: run([zoo, "list"]))
    bare = bench.compare("zoo list vs bare interpreter", unit="s", repeats=args.repeats,
                         baseline=True,
                         peer=("python -c 'pass'", lambda: run([py, "-c", "pass"])),
                         ours=lambda: run([zoo, "list"]))
    ours = min(cold["ours"], bare["ours"])
    for limit in (0.5, 0.2):
        bench.record(f"zoo list <= {limit} s", peer=(f"{limit} s", limit), ours=ours, unit="s",
                     goal=1.0, higher_is_better=False, baseline=True)
    bench.finish()


if __name__ == "__main__":
    main()
