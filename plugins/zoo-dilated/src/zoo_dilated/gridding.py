"""Gridding in stacks of dilated convolutions, and Hybrid Dilated Convolution (HDC) rates.

A stack of ``K``-tap convolutions with rates ``r_1 … r_n`` reaches the input offsets

    O = { Σ_i t_i r_i : t_i ∈ {−(K−1)/2, …, (K−1)/2} }

around an output position. When ``O`` misses offsets inside its span, the output sees the
input through a grid with holes ("gridding"): rates sharing a common factor, such as
(2, 4, 8), reach only its multiples. Wang et al., "Understanding Convolution for Semantic
Segmentation", WACV 2018, §3.2, give the HDC rule: the rates of a group share no common factor
> 1 and, with ``M_n = r_n`` and

    M_i = max[M_{i+1} − 2 r_i,  M_{i+1} − 2 (M_{i+1} − r_i),  r_i],

the maximum distance between two non-zero taps after the second layer obeys ``M_2 ≤ K``.
Sawtooth schedules repeat such a group, e.g. (1, 2, 5, 1, 2, 5).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from zoo_core import InputError

from .layers.dilated_conv import check_rate


def _check(rates: Sequence[int], kernel_size: int) -> tuple[int, ...]:
    if not rates:
        raise InputError("rates=() is empty; give each layer's dilation rate, e.g. (1, 2, 5)")
    if not isinstance(kernel_size, int) or kernel_size < 2:
        raise InputError(f"kernel_size={kernel_size!r} must be an integer ≥ 2 "
                            "(a 1-tap kernel has no holes to space)")
    return tuple(check_rate(r, f"rates[{i}]") for i, r in enumerate(rates))


def offsets(rates: Sequence[int], kernel_size: int = 3) -> list[int]:
    """Sorted input offsets (relative to the output position) that a stack reaches.

    Example:
        >>> offsets((2, 2))
        [-4, -2, 0, 2, 4]
    """
    rates = _check(rates, kernel_size)
    taps = [t - (kernel_size - 1) // 2 for t in range(kernel_size)]
    reach = {0}
    for r in rates:
        reach = {o + t * r for o in reach for t in taps}
    return sorted(reach)


def holes(rates: Sequence[int], kernel_size: int = 3) -> list[int]:
    """Offsets inside the stack's span that no path reaches (empty: no gridding)."""
    reach = offsets(rates, kernel_size)
    got = set(reach)
    return [o for o in range(reach[0], reach[-1] + 1) if o not in got]


def coverage(rates: Sequence[int], kernel_size: int = 3, dims: int = 2) -> torch.Tensor:
    """Boolean coverage map of shape ``(span,) * dims``: True where an input position reaches
    the centre output (square kernels make it the outer product of the 1-D coverage)."""
    reach = offsets(rates, kernel_size)
    line = torch.zeros(reach[-1] - reach[0] + 1, dtype=torch.bool)
    line[torch.tensor(reach) - reach[0]] = True
    out = line
    for _ in range(dims - 1):
        out = out.unsqueeze(-1) & line
    return out


def render(cover: torch.Tensor) -> str:
    """A 2-D coverage map as text: ``#`` reached, ``.`` hole."""
    if cover.dim() != 2:
        raise InputError(f"render() takes a 2-D map, got shape {tuple(cover.shape)!r}")
    return "\n".join("".join("#" if v else "." for v in row.tolist()) for row in cover)


@dataclass(frozen=True)
class HDCReport:
    """Outcome of :func:`hdc_check`.

    Attributes:
        rates: the rates checked.
        kernel_size: K.
        max_distance: ``(M_1, …, M_n)`` of the HDC recursion.
        common_factor: greatest common divisor of the rates.
        holes: unreached offsets within the span (exact, from :func:`holes`).
    """

    rates: tuple[int, ...]
    kernel_size: int
    max_distance: tuple[int, ...]
    common_factor: int
    holes: tuple[int, ...]

    @property
    def satisfies_rule(self) -> bool:
        """``M_2 ≤ K`` and no common factor > 1 (single layers: ``r_1 ≤ K`` is not required)."""
        m2 = self.max_distance[1] if len(self.max_distance) > 1 else 1
        return m2 <= self.kernel_size and self.common_factor == 1

    @property
    def ok(self) -> bool:
        """No gridding: every offset within the span is reached (the exact criterion; the HDC
        rule is sufficient for increasing groups that start at 1, not necessary)."""
        return not self.holes

    def problems(self) -> list[str]:
        """Human-readable reasons the schedule grids (empty when ``ok``)."""
        out = []
        if self.common_factor > 1:
            out.append(f"rates {self.rates} share the factor {self.common_factor}: only its "
                       "multiples are reached")
        if len(self.max_distance) > 1 and self.max_distance[1] > self.kernel_size:
            out.append(f"M_2 = {self.max_distance[1]} > K = {self.kernel_size}")
        if self.holes:
            shown = ", ".join(map(str, self.holes[:8])) + (" …" if len(self.holes) > 8 else "")
            out.append(f"{len(self.holes)} unreached offsets: {shown}")
        return out


def hdc_check(rates: Sequence[int], kernel_size: int = 3) -> HDCReport:
    """Check a rate schedule against the HDC rule and its exact coverage.

    Example:
        >>> hdc_check((1, 2, 5)).ok, hdc_check((2, 4, 8)).ok
        (True, False)
    """
    rates = _check(rates, kernel_size)
    m = [rates[-1]]
    for r in reversed(rates[:-1]):
        nxt = m[0]
        m.insert(0, max(nxt - 2 * r, nxt - 2 * (nxt - r), r))
    return HDCReport(rates, kernel_size, tuple(m), math.gcd(*rates),
                     tuple(holes(rates, kernel_size)))


def propose_rates(num_layers: int, kernel_size: int = 3, group_size: int = 3,
                  max_rate: int | None = None) -> tuple[int, ...]:
    """A gridding-free sawtooth schedule: one HDC group repeated over ``num_layers``.

    The group starts at 1, ends at the largest rate ≤ ``max_rate`` for which a valid group
    exists, and climbs by the smallest steps that keep it valid (rule and exact coverage).
    Without ``max_rate`` the group ends at the largest rate the rule allows.

    Example:
        >>> propose_rates(6, max_rate=5)
        (1, 2, 5, 1, 2, 5)
        >>> propose_rates(3)
        (1, 3, 9)
    """
    for name, v in (("num_layers", num_layers), ("group_size", group_size)):
        if not isinstance(v, int) or v < 1:
            raise InputError(f"{name}={v!r} must be an integer ≥ 1")
    if max_rate is not None:
        check_rate(max_rate, "max_rate")
    ceiling = max_rate or kernel_size ** group_size
    group = _best_group(group_size, kernel_size, ceiling)
    if group is None:
        raise InputError(f"no gridding-free group of {group_size} rates up to "
                            f"max_rate={max_rate!r} exists for kernel_size={kernel_size}; "
                            "raise max_rate or shorten group_size")
    return tuple(group[i % group_size] for i in range(num_layers))


def _best_group(size: int, k: int, ceiling: int) -> tuple[int, ...] | None:
    if size == 1:
        return (1,)
    for last in range(ceiling, 1, -1):
        for middle in itertools.combinations(range(2, last), size - 2):
            group = (1, *middle, last)
            report = hdc_check(group, k)
            if report.ok and report.satisfies_rule:
                return group
    return None
