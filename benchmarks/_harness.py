"""The one timing harness every benchmark uses: peer and ours interleaved, one JSON line each.

    from _harness import Bench

    bench = Bench("rnn_cpu", threads=2)                 # records load, threads, versions
    bench.compare("LSTM 2x512 fwd+bwd", unit="seq/s", goal=1.0, higher_is_better=True,
                  peer=("torch.nn", lambda: step(ref)), ours=lambda: step(zoo_lstm),
                  repeats=5, work=32)               # work: units per call (32 seqs)
    bench.record("MiniLM load", peer=("transformers", 0.41), ours=0.12, unit="s",
                 goal=0.25, higher_is_better=False)   # figures measured some other way
    bench.finish()                                       # prints the table

``compare`` runs a warm-up of each, then ``repeats`` rounds of peer, ours (A B A B …), and
keeps the minimum and median of each; the ratio is taken of the minima (the figure least
touched by other processes) and stated as ours/peer for rates, peer/ours for times, so that
above 1.0 always means "ours is better". ``goal`` is that ratio's target.

A figure compares ours with a *peer* (another project's implementation at its fastest
settings) or, with ``baseline=True``, with a *baseline*: zoo itself under other settings (Partial
FC at r=1, checkpointing off, the store before a change) or something that is no peer (a bare
``import torch``, a time limit). The scoreboard labels baselines as such. Quality figures
(units in ``QUALITY_UNITS``, such as a Spearman ρ) are compared as the difference ours − peer:
a ratio of two numbers near zero says nothing.

Each figure is one JSON line: appended to ``$ZOO_BENCH_OUT`` when set (``benchmarks/run.py``
sets it), and printed as a table row. Fields: bench, what, peer, role (peer or baseline), unit,
peer_value, ours (our value), ratio, difference (for quality figures), goal, met, peer_median,
ours_median, repeats, load (1-minute load average before the figure), threads, machine,
device, time.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

#: units of quality figures, compared as differences (ours − peer), not ratios
QUALITY_UNITS = frozenset({"ρ", "analogy", "accuracy", "AUC"})


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def _timed(fn: Callable[[], Any], sync: Callable[[], None] | None) -> float:
    start = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return time.perf_counter() - start


class Bench:
    """Collects figures of one benchmark script; see the module docstring."""

    def __init__(self, name: str, *, threads: int | None = None, device: str = "cpu") -> None:
        self.name, self.device = name, device
        self.rows: list[dict[str, Any]] = []
        self.threads = threads
        if threads:
            try:
                import torch

                torch.set_num_threads(threads)
            except ImportError:
                pass

    def _threads(self) -> int | None:
        if "torch" in sys.modules:
            return int(sys.modules["torch"].get_num_threads())
        return self.threads

    def compare(self, what: str, *, peer: tuple[str, Callable[[], Any]], ours: Callable[[], Any],
                unit: str = "s", work: float = 1.0, repeats: int = 5, warmup: int = 1,
                goal: float | None = None, higher_is_better: bool | None = None,
                sync: Callable[[], None] | None = None, check: Callable[[], None] | None = None,
                baseline: bool = False) -> dict[str, Any]:
        """Time ``peer`` and ``ours`` interleaved and record the figure.

        Args:
            what: the figure's name.
            peer: ``(peer name, callable)``.
            ours: callable doing the same work.
            unit: ``"s"`` (seconds per call) or a rate such as ``"seq/s"`` (``work`` / seconds).
            work: units of work per call, for rates.
            repeats: timed rounds; the minimum and median are kept.
            goal: target of the ratio (above 1 is ours better).
            higher_is_better: defaults to ``True`` for rates, ``False`` for ``"s"``.
            sync: called after each call inside the timing (``torch.cuda.synchronize``).
            check: called once before timing (assert outputs equal first).
            baseline: ``peer`` is zoo itself or no peer (labelled a baseline).
        """
        if check is not None:
            check()
        peer_name, peer_fn = peer
        for _ in range(warmup):
            peer_fn()
            ours()
        t_peer, t_ours = [], []
        for _ in range(repeats):
            t_peer.append(_timed(peer_fn, sync))
            t_ours.append(_timed(ours, sync))
        rate = unit != "s"

        def value(ts: list[float], pick: Callable[[list[float]], float]) -> float:
            return work / pick(ts) if rate else pick(ts)

        return self.record(
            what, peer=(peer_name, value(t_peer, min)), ours=value(t_ours, min), unit=unit,
            goal=goal, higher_is_better=rate if higher_is_better is None else higher_is_better,
            peer_median=value(t_peer, statistics.median),
            ours_median=value(t_ours, statistics.median), repeats=repeats, baseline=baseline)

    def record(self, what: str, *, peer: tuple[str, float], ours: float, unit: str,
               goal: float | None = None, higher_is_better: bool = True,
               baseline: bool = False, **extra: Any) -> dict[str, Any]:
        """Record a figure measured by other means (same run, peer beside ours). For a quality
        unit (``QUALITY_UNITS``) the figure is the difference ours − peer (``goal``: its least
        value), else the ratio."""
        peer_name, peer_value = peer
        ratio = (ours / peer_value if higher_is_better else peer_value / ours) \
            if peer_value and ours else float("nan")
        difference = None
        if unit in QUALITY_UNITS:
            difference = round((ours - peer_value) * (1 if higher_is_better else -1), 6)
        score = ratio if difference is None else difference
        row = {
            "bench": self.name, "what": what, "peer": peer_name,
            "role": "baseline" if baseline else "peer", "unit": unit,
            "peer_value": peer_value, "ours": ours, "ratio": round(ratio, 4),
            "difference": difference, "goal": goal,
            "met": None if goal is None else bool(score >= goal),
            "higher_is_better": higher_is_better, **extra,
            "load": round(os.getloadavg()[0], 2), "threads": self._threads(),
            "machine": _machine(), "device": self.device,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.rows.append(row)
        out = os.environ.get("ZOO_BENCH_OUT")
        if out:
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        print(format_row(row), flush=True)
        return row

    def finish(self) -> list[dict[str, Any]]:
        """Print the figures as one table; return them."""
        print(table(self.rows))
        return self.rows


def _num(x: float) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _score(row: dict[str, Any]) -> str:
    """The comparison as printed: ``1.23×`` for a ratio, ``+0.021`` for a difference."""
    if row.get("difference") is not None:
        return f"{row['difference']:+.3g}"
    return f"{row['ratio']:.3g}×"


def _goal(row: dict[str, Any]) -> str:
    if row["goal"] is None:
        return ""
    return f"≥ {row['goal']:+g}" if row.get("difference") is not None else f"≥ {row['goal']}×"


def format_row(row: dict[str, Any]) -> str:
    goal = ""
    if row["goal"] is not None:
        goal = f" (goal {_goal(row)}: {'met' if row['met'] else 'NOT met'})"
    label = "baseline " if row.get("role") == "baseline" else ""
    return (f"[{row['bench']}] {row['what']}: {label}{row['peer']} {_num(row['peer_value'])} "
            f"{row['unit']}, ours {_num(row['ours'])} {row['unit']} -> {_score(row)}{goal}, "
            f"load {row['load']}")


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of figures: what, what it is compared with (a peer, or a baseline:
    zoo itself or no peer), both values, the ratio (or, for quality, the difference ours −
    peer), goal, met, load."""
    lines = ["| what | compared with | theirs | ours | unit | ours vs theirs | goal | met | load |",
             "|---|---|---:|---:|---|---:|---:|---|---:|"]
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        against = f"baseline: {r['peer']}" if r.get("role") == "baseline" else r["peer"]
        lines.append(f"| {r['what']} | {against} | {_num(r['peer_value'])} | "
                     f"{_num(r['ours'])} | {r['unit']} | {_score(r)} | {_goal(r)} | {met} | "
                     f"{r.get('load', '')} |")
    return "\n".join(lines)
