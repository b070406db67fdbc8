"""`zoo list` cold wall time next to `python -c "import torch"`, measured in the same run.

Goal: `zoo list` ≤ 0.5 s and torch never imported. Each command runs in a fresh process
(cold interpreter; the OS file cache is warm after the first repeat, as it is for users).

    uv run --all-packages python benchmarks/zoo_list.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    zoo = str(Path(sys.executable).with_name("zoo"))
    probe = ("import sys\nfrom zoo_core.cli import main\nmain(['list'])\n"
             "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)")
    torch_free = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                check=True).stderr.strip()
    entries = subprocess.run([zoo, "--json", "list"], capture_output=True, text=True,
                             check=True).stdout.count('"name"')

    rows = [("zoo list", wall([zoo, "list"], args.repeats)),
            ("python -c 'import torch'", wall([sys.executable, "-c", "import torch"],
                                              args.repeats)),
            ("python -c 'pass'", wall([sys.executable, "-c", "pass"], args.repeats))]
    print(f"{'command':<28} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, t in rows:
        print(f"{name:<28} {statistics.median(t):>9.3f} {min(t):>7.3f} {max(t):>7.3f}")
    zoo_s, torch_s = statistics.median(rows[0][1]), statistics.median(rows[1][1])
    print(f"\nzoo list / import torch = {zoo_s / torch_s:.2f}x  ({entries} names listed; "
          f"{torch_free}); goal: zoo list <= 0.5 s -> {'met' if zoo_s <= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
