"""The ``budget`` policy: a multiple-choice knapsack over the blocks.

Each block ``j`` runs in one of three modes with measured saved bytes and recompute time:
``none`` (a_j bytes, 0 s), ``selective`` (s_j, r_j) or ``full`` (x_j, t_j). Given a budget B
for the saved activations, choose one mode per block to minimise the recompute time subject to
``other + sum_j bytes_j(mode_j) <= B``, where ``other`` is what the layers outside the blocks
save. Solved exactly by dynamic programming over the bytes, quantised to ``resolution`` units
(each choice rounded up, the capacity down, so the plan never exceeds the budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo_core import ConfigError

from .profiler import BlockProfile

CHOICES = ("none", "selective", "full")


@dataclass(frozen=True)
class Plan:
    modes: tuple[str, ...]
    predicted_bytes: int
    predicted_recompute_s: float
    budget: int
    minimum: int


def _options(prof: BlockProfile, j: int) -> list[tuple[str, int, float]]:
    b = prof.blocks[j]
    return [("none", b.saved_bytes, 0.0), ("selective", b.selective_bytes, b.selective_s),
            ("full", b.input_bytes, b.forward_s)]


def minimum_bytes(prof: BlockProfile) -> int:
    """The least saved bytes any choice of modes reaches (each block at its smallest)."""
    return prof.other_bytes + sum(min(o[1] for o in _options(prof, j))
                                  for j in range(len(prof.blocks)))


def plan_budget(prof: BlockProfile, budget: int, resolution: int = 4000) -> Plan:
    """The least-recompute choice of modes whose saved bytes fit ``budget``."""
    n = len(prof.blocks)
    options = [_options(prof, j) for j in range(n)]
    minimum = minimum_bytes(prof)
    if budget < minimum:
        raise ConfigError(
            f"budget={budget!r} bytes is below the minimum achievable {minimum} bytes "
            f"({minimum / max(prof.total_none, 1):.1%} of the {prof.total_none} bytes saved "
            "without checkpointing) on these inputs; raise the budget, or use policy='sqrt'")
    capacity = budget - prof.other_bytes
    unit = max(1, math.ceil(prof.total_none / resolution))
    cap = capacity // unit
    inf = float("inf")
    cost = [0.0] * (cap + 1)  # cost[c]: least time for the blocks so far within c units
    choice: list[list[int]] = []
    for opts in options:
        new = [inf] * (cap + 1)
        pick = [-1] * (cap + 1)
        for i, (_, nbytes, t) in enumerate(opts):
            w = math.ceil(nbytes / unit)
            for c in range(w, cap + 1):
                v = cost[c - w] + t
                if v < new[c]:
                    new[c], pick[c] = v, i
        cost = new
        choice.append(pick)
    c = min(range(cap + 1), key=lambda i: (cost[i], -i))
    if cost[c] == inf:  # rounding made the tightest plans infeasible: take the smallest
        modes = [min(opts, key=lambda o: o[1])[0] for opts in options]
    else:
        modes = []
        for j in range(n - 1, -1, -1):
            i = choice[j][c]
            modes.append(options[j][i][0])
            c -= math.ceil(options[j][i][1] / unit)
        modes.reverse()
    chosen = [next(o for o in opts if o[0] == m) for opts, m in zip(options, modes, strict=True)]
    return Plan(tuple(modes), prof.other_bytes + sum(o[1] for o in chosen),
                sum(o[2] for o in chosen), budget, minimum)
