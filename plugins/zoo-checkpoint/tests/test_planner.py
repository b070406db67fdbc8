"""The budget planner is the exact knapsack optimum; measured bytes follow the plan."""

from __future__ import annotations

import copy
import itertools
import os
import random

import pytest
import torch
from zoo_checkpoint import profile, saved_bytes
from zoo_checkpoint.example import ResidualMLP, ResidualMLPConfig
from zoo_checkpoint.planner import plan_budget
from zoo_checkpoint.profiler import BlockProfile, BlockStats


def random_profile(rng: random.Random, n: int) -> BlockProfile:
    blocks = []
    for _ in range(n):
        a = rng.randint(500, 5000)
        s = rng.randint(a // 4, a)
        x = rng.randint(10, s)
        t = rng.uniform(1.0, 5.0)
        blocks.append(BlockStats(a, x, s, t, rng.uniform(0.05, 0.5) * t))
    other = rng.randint(0, 2000)
    return BlockProfile(tuple(blocks), other, other + sum(b.saved_bytes for b in blocks))


@pytest.mark.parametrize("seed", range(12))
def test_plan_is_the_brute_force_optimum(seed):
    rng = random.Random(seed)
    prof = random_profile(rng, rng.randint(1, 6))
    budget = rng.randint(prof.other_bytes, prof.total_none)
    table = [{"none": (b.saved_bytes, 0.0), "selective": (b.selective_bytes, b.selective_s),
              "full": (b.input_bytes, b.forward_s)} for b in prof.blocks]
    best = None
    for modes in itertools.product(("none", "selective", "full"), repeat=len(table)):
        nbytes = prof.other_bytes + sum(t[m][0] for t, m in zip(table, modes, strict=True))
        secs = sum(t[m][1] for t, m in zip(table, modes, strict=True))
        if nbytes <= budget and (best is None or secs < best):
            best = secs
    if best is None:
        with pytest.raises(Exception, match="below the minimum achievable"):
            plan_budget(prof, budget)
        return
    plan = plan_budget(prof, budget, resolution=100_000)
    assert plan.predicted_bytes <= budget
    assert plan.predicted_recompute_s == pytest.approx(best, abs=1e-9)


def test_budget_is_met_when_measured():
    torch.manual_seed(0)
    model = ResidualMLP(ResidualMLPConfig(width=64, hidden=256, depth=12, dropout=0.1))
    inputs = {"x": torch.randn(32, 64)}
    none = saved_bytes(model, inputs)
    for fraction in (0.3, 0.6):
        twin = copy.deepcopy(model).set_grad_checkpointing("budget", fraction=fraction,
                                                          inputs=inputs)
        got = saved_bytes(twin, inputs)
        assert 0.9 * fraction * none <= got <= fraction * none, (fraction, got / none)


def test_profile_table_and_plot(tmp_path):
    torch.manual_seed(0)
    model = ResidualMLP(ResidualMLPConfig(width=32, hidden=128, depth=6))
    prof = profile(model, {"x": torch.randn(16, 32)}, repeats=1)
    names = [r[0] for r in prof.rows]
    assert names == ["none", "every", "every-k", "sqrt", "budget(0.3)", "selective"]
    assert prof.rows[0][1] == saved_bytes(model, {"x": torch.randn(16, 32)})
    assert "| none |" in prof.table() and "1.000" in prof.table()
    assert "sqrt" in prof.pareto()  # the fewest bytes is always on the front
    png = tmp_path / "pareto.png"
    old = os.umask(0o027)
    try:
        fig = prof.plot(png)
    finally:
        os.umask(old)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert png.stat().st_mode & 0o777 == 0o640  # the umask's mode, not mkstemp's 0600
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert [t.split(":")[0] for t in legend if ":" in t] == names  # every policy named once
    assert not fig.axes[0].texts  # no labels drawn over the points
    assert len(prof.blocks.blocks) == 6 and all(b.saved_bytes > b.input_bytes
                                                for b in prof.blocks.blocks)
