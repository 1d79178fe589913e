"""TSFA's round rate table and batched knapsacks against independent references.

The references here are written out by hand: the deliverable bits as an explicit sum
over nodes, the needed bandwidth by plain bisection on it, per-row ``searchsorted``,
and the rank choice by enumerating every vector.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from channels import CHANNELS
from channels.law import WindowLaw, exponential_nodes
from wirelessfl.control.planning import UplinkModel
from wirelessfl.control.rate_table import (
    RateTable,
    choose_ranks_exact_many,
    choose_ranks_many,
    first_at_least,
)


def block_plan(n: int, seed: int) -> tuple[UplinkModel, np.ndarray]:
    rng = np.random.default_rng(seed)
    gq, pq = exponential_nodes()
    law = WindowLaw.block(rng.exponential(size=n), rng.uniform(0.005, 0.05, n), gq[None],
                          pq[None])
    return UplinkModel(10 ** rng.uniform(5.5, 8, n), law), rng.uniform(0, 0.02, n)


def jakes_plan(n: int, seed: int) -> tuple[UplinkModel, np.ndarray]:
    rng = np.random.default_rng(seed)
    ch = CHANNELS.get("jakes").from_dict({"max_doppler_hz": 20.0})
    ch.reset(n, rng)
    law = ch.window_law(rng.exponential(size=n), 0.0, 0.0)
    return UplinkModel(10 ** rng.uniform(5.5, 8, n), law), rng.uniform(0, 0.02, n)


PLANS = [block_plan, jakes_plan]


def bits_by_hand(plan: UplinkModel, a: np.ndarray, k: int, b: float, tau: float) -> float:
    """``sum_m p_m |[a, tau] & [start_m, end_m)| b log2(1 + c g_m / b)``, one node at a time."""
    law = plan.law
    total = 0.0
    for m in range(law.gains.shape[1]):
        overlap = min(tau, law.end_s[k, m]) - max(a[k], law.start_s[k, m])
        if overlap > 0 and b > 0:
            total += law.probs[k, m] * overlap * b * math.log2(
                1 + plan.c_hz[k] * law.gains[k, m] / b)
    return total


def need_by_bisection(plan, a, k, bits, tau, b_max) -> float:
    lo, hi = 0.0, b_max
    if bits_by_hand(plan, a, k, hi, tau) < bits:
        return math.inf
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if bits_by_hand(plan, a, k, mid, tau) >= bits else (mid, hi)
    return hi


@pytest.mark.parametrize("make", PLANS)
def test_segments_group_exactly_the_nodes_that_share_their_bounds(make):
    plan, _ = make(5, 0)
    law = plan.law
    start, end, of_node = law.segments()
    assert np.array_equal(start[:, of_node], law.start_s)
    assert np.array_equal(end[:, of_node], law.end_s)
    pairs = {(tuple(start[:, s]), tuple(end[:, s])) for s in range(start.shape[1])}
    assert len(pairs) == start.shape[1]  # no two segments alike
    assert start.shape[1] < law.gains.shape[1]  # the laws do share segments


@pytest.mark.parametrize("make", PLANS)
def test_the_table_is_the_deliverable_bits_at_its_grid_points(make):
    plan, a = make(4, 1)
    table = RateTable(plan, a, 2e7, points=16)
    taus = np.array([0.01, 0.03, 0.07, 0.4])
    d = table.deliverable(taus)
    for k in range(4):
        for t, tau in enumerate(taus):
            for j in (0, 3, 9, 16):
                ref = bits_by_hand(plan, a, k, float(table.b[j]), float(tau))
                assert d[k, t, j] == pytest.approx(ref, rel=1e-10, abs=1e-9)


@pytest.mark.parametrize("make", PLANS)
def test_bounds_bracket_the_needed_bandwidth_tightly(make):
    plan, a = make(5, 2)
    b_max = 2e7
    table = RateTable(plan, a, b_max)
    rng = np.random.default_rng(3)
    bits = np.sort(rng.uniform(1e3, 4e5, (5, 3)), axis=1)
    taus = np.array([0.02, 0.05, 0.3])
    lower, upper = table.bounds(bits, taus)
    gaps = []
    for k in range(5):
        for t, tau in enumerate(taus):
            for r in range(3):
                need = need_by_bisection(plan, a, k, bits[k, r], tau, b_max)
                if math.isinf(need):
                    assert math.isinf(upper[k, t, r])
                    continue
                assert lower[k, t, r] <= need * (1 + 1e-12)
                assert need <= upper[k, t, r] * (1 + 1e-12)
                gaps.append(upper[k, t, r] / lower[k, t, r] - 1)
    assert gaps and max(gaps) < 1e-2 and np.median(gaps) < 3e-3


def test_first_at_least_is_a_per_row_searchsorted():
    rng = np.random.default_rng(4)
    rows = np.cumsum(rng.uniform(0, 1, (3, 5, 40)), axis=2)
    rows[..., :3] = rows[..., :1]  # ties
    values = rng.uniform(-1, 25, (3, 5, 6))
    got = first_at_least(rows, values)
    for i in range(3):
        for j in range(5):
            assert got[i, j].tolist() == np.searchsorted(rows[i, j], values[i, j],
                                                         side="left").tolist()


def brute_force(cost, need, budget) -> float:
    """The least total cost of any choice that fits, by enumeration (inf if none)."""
    best = math.inf
    n, c = cost.shape
    for m in itertools.product(range(c), repeat=n):
        idx = (np.arange(n), np.array(m))
        if need[idx].sum() <= budget:
            best = min(best, float(cost[idx].sum()))
    return best


def knapsack_instance(rng, n, c, t_n):
    cost = np.sort(rng.uniform(0, 1, (n, c)), axis=1)[:, ::-1].copy()
    cost[rng.uniform(size=(n, c)) < 0.1] = np.inf  # choices not allowed
    need = np.sort(rng.uniform(0, 1, (t_n, n, c)), axis=2)
    return cost, need, float(rng.uniform(0.2, 0.6) * n)


def test_the_batched_exact_knapsack_matches_enumeration():
    rng = np.random.default_rng(5)
    for _ in range(60):
        n, c = int(rng.integers(1, 6)), int(rng.integers(2, 5))
        cost, need, budget = knapsack_instance(rng, n, c, 3)
        m, ok = choose_ranks_exact_many(cost, need, budget)
        for t in range(3):
            best = brute_force(cost, need[t], budget)
            assert ok[t] == math.isfinite(best)
            if ok[t]:
                idx = (np.arange(n), m[t])
                assert need[t][idx].sum() <= budget * (1 + 1e-12)
                assert cost[idx].sum() == pytest.approx(best, rel=1e-12, abs=1e-15)


def test_the_batched_lagrangian_choice_fits_and_no_single_upgrade_improves_it():
    rng = np.random.default_rng(6)
    gaps = []
    for _ in range(60):
        n, c = int(rng.integers(2, 7)), int(rng.integers(2, 5))
        cost, need, budget = knapsack_instance(rng, n, c, 4)
        m, ok = choose_ranks_many(cost, need, budget)
        for t in range(4):
            best = brute_force(cost, need[t], budget)
            assert ok[t] == math.isfinite(best)
            if not ok[t]:
                continue
            idx = (np.arange(n), m[t])
            used, total = need[t][idx].sum(), cost[idx].sum()
            assert used <= budget * (1 + 1e-12) and np.isfinite(total)
            for k, j in itertools.product(range(n), range(c)):
                fits = used - need[t][k, m[t][k]] + need[t][k, j] <= budget
                assert not (fits and cost[k, j] < cost[k, m[t][k]] - 1e-12)
            gaps.append(total - best)
    assert max(gaps) >= 0 and np.mean(np.array(gaps) <= 1e-12) > 0.7  # mostly optimal


@pytest.mark.parametrize("make", PLANS)
def test_narrow_keeps_the_min_max_deadline_inside_its_bracket(make):
    plan, a = make(6, 7)
    b_max = 3e7
    table = RateTable(plan, a, b_max)
    rng = np.random.default_rng(8)
    bits = rng.uniform(2e4, 3e5, (6, 3))
    lo, hi = plan.deadline_bracket(a, bits, b_max)
    lo_n, hi_n, fit = table.narrow(bits, lo, hi, iters=30)
    for c in range(3):
        def total(tau, c=c):
            return sum(need_by_bisection(plan, a, k, bits[k, c], tau, b_max)
                       for k in range(6))
        assert total(hi_n[c]) <= b_max < total(lo_n[c])  # tau* in (lo, hi]
        assert fit[:, c].sum() <= b_max
        for k in range(6):  # the needs given for hi deliver their bits by hi
            assert bits_by_hand(plan, a, k, fit[k, c], hi_n[c]) >= bits[k, c] * (1 - 1e-12)
        assert hi_n[c] / lo_n[c] - 1 < 5e-3  # the table narrowed it
