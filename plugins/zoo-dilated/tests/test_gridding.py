"""Coverage maps against back-propagation through real dilated conv stacks; the HDC rule."""

import itertools

import pytest
import torch
from torch import nn
from zoo_dilated.gridding import coverage, hdc_check, holes, offsets, propose_rates, render

import zoo_core as zoo


def gradient_mask(rates, k=3):
    """Inputs that reach the centre output of a linear stack of dilated k × k convs."""
    span = sum(r * (k - 1) for r in rates)
    layers = [nn.Conv2d(1, 1, k, dilation=r, bias=False) for r in rates]
    for conv in layers:
        nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(1, 1, span + 1, span + 1, dtype=torch.double, requires_grad=True)
    out = nn.Sequential(*layers).double()(x)
    assert out.shape[-2:] == (1, 1)
    out.sum().backward()
    return x.grad[0, 0] != 0


@pytest.mark.parametrize("rates", [(2, 2), (1, 2, 5), (2, 4, 8), (1, 2, 9), (1, 3, 9), (3,)])
def test_coverage_matches_backprop(rates):
    assert torch.equal(coverage(rates), gradient_mask(rates))


@pytest.mark.parametrize("rates,k", [((2, 3), 5), ((1, 4, 4), 5)])
def test_coverage_other_kernels(rates, k):
    assert torch.equal(coverage(rates, k), gradient_mask(rates, k))


def test_gridding_of_common_factor():
    assert offsets((2, 2)) == [-4, -2, 0, 2, 4]
    assert holes((2, 4, 8)) == [o for o in range(-14, 15) if o % 2]
    report = hdc_check((2, 4, 8))
    assert not report.ok and report.common_factor == 2
    assert any("share the factor 2" in p for p in report.problems())
    assert render(coverage((2,), 3))[:5] == "#.#.#"


def test_hdc_recursion_by_hand():
    # M_3 = 5; M_2 = max(5 - 4, 5 - 2·3, 2) = 2; M_1 = max(2 - 2, 2 - 2·1, 1) = 1
    report = hdc_check((1, 2, 5))
    assert report.max_distance == (1, 2, 5) and report.satisfies_rule and report.ok
    # Wang et al.: (1, 2, 9) fails, M_2 = max(9 - 4, 9 - 14, 2) = 5 > 3
    bad = hdc_check((1, 2, 9))
    assert bad.max_distance[1] == 5 and not bad.satisfies_rule and not bad.ok
    assert bad.holes == (-5, -4, 4, 5)


@pytest.mark.parametrize("k", [3, 5])
def test_rule_implies_no_holes_for_increasing_groups_from_one(k):
    for n in (2, 3, 4):
        for rest in itertools.combinations(range(2, 16), n - 1):
            report = hdc_check((1, *rest), k)
            if report.satisfies_rule:
                assert not report.holes, report


def test_propose_rates_sawtooth():
    assert propose_rates(6, max_rate=5) == (1, 2, 5, 1, 2, 5)
    assert propose_rates(4) == (1, 3, 9, 1)
    for max_rate in range(3, 12):
        group = propose_rates(3, max_rate=max_rate)
        assert not holes(group) and hdc_check(group).satisfies_rule
        # nothing valid ends at a larger rate within the cap (brute force)
        for last in range(group[-1] + 1, max_rate + 1):
            for mid in range(2, last):
                r = hdc_check((1, mid, last))
                assert not (r.ok and r.satisfies_rule), (1, mid, last)


@pytest.mark.parametrize("call,match", [
    (lambda: offsets(()), r"rates=\(\) is empty"),
    (lambda: offsets((1, 0)), r"rates\[1\]=0"),
    (lambda: holes((1, 2), kernel_size=1), "kernel_size=1"),
    (lambda: propose_rates(0), "num_layers=0"),
    (lambda: propose_rates(3, max_rate=-1), "max_rate=-1"),
])
def test_bad_input(call, match):
    with pytest.raises((zoo.InputError, zoo.ConfigError), match=match):
        call()
