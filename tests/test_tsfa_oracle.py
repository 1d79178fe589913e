"""TSFA's online decision against a brute force that shares nothing with it.

The oracle below is written from the formulation in docs/tsfa.md with numpy alone:
its own Shannon rate, its own bits-by-deadline from the scenario's numbers (the
known gain until the block ends, then the law's nodes), the bandwidth a client
needs by bisection on b, the min-max latency by bisection on tau, and enumeration
of every rank vector. Its costs are built here from the scenario's numbers
(``V = v T_budget^2``, ``p_k`` the normalised weights, the error profiles), never
from the controller. TSFA's whole allocation is scored: its bandwidths must fit in
the band, and its latency is what the oracle computes for those bandwidths.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from channels.law import WindowLaw
from wirelessfl.control.base import RoundContext
from wirelessfl.control.planning import UplinkModel
from wirelessfl.control.tsfa import TSFA, TSFAParams, TSFAScheduled

BISECT = 64  # halvings of every bisection (each bracket ends below 1e-13 relative)


# ---------------------------------------------------------------------- the oracle

def shannon_bps(b_hz, snr_hz):
    """``b log2(1 + snr / b)``, 0 at b = 0 (bit/s)."""
    b = np.asarray(b_hz, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = b * np.log2(1.0 + snr_hz / np.where(b > 0, b, 1.0))
    return np.where(b > 0, r, 0.0)


def bisect(pred, lo, hi):
    """The smallest x in (lo, hi] with ``pred(x)`` (pred monotone, true at hi), per
    element of the arrays lo and hi, as the upper end of the final bracket."""
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    for _ in range(BISECT):
        mid = 0.5 * (lo + hi)
        ok = pred(mid)
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return hi


class Oracle:
    """Bits by a deadline, needed bandwidth, min-max latency and the best rank vector
    for one round, from the round's numbers alone.

    Client k's link: the gain ``g0[k]`` until ``until[k]`` (s after the round start),
    then gain ``gains[k, j]`` with probability ``probs[k, j]`` (``until = inf``: the
    measured gain for the whole upload). Its upload starts at ``start[k]``.
    """

    def __init__(self, c_hz, g0, until, gains, probs, start, bits, cost, band_hz, queue):
        self.c, self.g0, self.until = c_hz, g0, until
        self.gains, self.probs, self.start = gains, probs, start
        self.bits, self.cost, self.band, self.queue = bits, cost, band_hz, queue

    def delivered(self, k, b, tau):
        """Expected bits clients k (int array) send with bandwidths b by deadlines tau
        (arrays of one shape), counted from each client's upload start."""
        a, until = self.start[k], self.until[k]
        known = np.maximum(np.minimum(tau, until) - a, 0.0)
        later = np.where(np.isfinite(until), np.maximum(tau - np.maximum(a, until), 0.0), 0.0)
        rate_later = sum(self.probs[k, j] * shannon_bps(b, self.c[k] * self.gains[k, j])
                         for j in range(self.gains.shape[1]))
        return known * shannon_bps(b, self.c[k] * self.g0[k]) + later * rate_later

    def need(self, k, bits, tau):
        """Least bandwidth with which clients k send ``bits`` by tau (inf: not with B)."""
        top = np.full(np.shape(bits), float(self.band))
        can = self.delivered(k, top, tau) >= bits
        b = bisect(lambda x: self.delivered(k, x, tau) >= bits, np.zeros(np.shape(bits)), top)
        return np.where(bits <= 0, 0.0, np.where(can, b, np.inf))

    def minmax(self, ms):
        """The least deadline by which each vector's payloads fit in the band together;
        ``ms`` (V, n), each with a sender."""
        ms = np.asarray(ms)
        k = np.broadcast_to(np.arange(ms.shape[1]), ms.shape)
        load = np.where(ms > 0, self.bits[k, ms], 0.0)

        def fits(tau):
            return self.need(k, load, np.broadcast_to(tau[:, None], ms.shape)).sum(1) \
                <= self.band

        lo = np.max(np.where(ms > 0, self.start[k], -np.inf), axis=1)
        hi = lo + 1.0
        while not np.all(fits(hi)):
            hi = np.where(fits(hi), hi, lo + 2 * (hi - lo))
        return bisect(fits, lo, hi)

    def best(self, choices):
        """The least objective over every vector of the given per-client choices that
        has at least one sender, and its vector."""
        ms = np.array([m for m in itertools.product(*choices) if any(m)])
        k = np.broadcast_to(np.arange(ms.shape[1]), ms.shape)
        j = self.cost[k, ms].sum(1) + self.queue * self.minmax(ms)
        i = int(np.argmin(j))
        return float(j[i]), ms[i]

    def score(self, m, b_hz):
        """J of a decision as played: its bandwidths, the oracle's finish times."""
        m = np.asarray(m)
        k = np.flatnonzero(m > 0)
        bits, b = self.bits[k, m[k]], np.asarray(b_hz, dtype=float)[k]
        hi = self.start[k] + 1.0
        while not np.all(self.delivered(k, b, hi) >= bits):
            hi = np.where(self.delivered(k, b, hi) >= bits, hi, hi + 2 * (hi - self.start[k]))
            assert np.all(hi < 1e9), "a sender never finishes with its bandwidth"
        ends = bisect(lambda t: self.delivered(k, b, t) >= bits, self.start[k], hi)
        return float(self.cost[np.arange(len(m)), m].sum()) + self.queue * float(ends.max())


# ---------------------------------------------------------------------- instances

def profile(rng, r, kind):
    """eps(0..r): 1 at 0, 0 at r; convex (a sorted energy spectrum) or not."""
    if kind == "convex":
        e = np.sort(rng.uniform(0.05, 1, r) ** 3)[::-1]
        return np.concatenate([[1.0], 1 - np.cumsum(e) / e.sum()])
    inner = np.sort(rng.uniform(0, 1, r - 1))[::-1]
    if r >= 3 and rng.uniform() < 0.3:  # the shape of the issue's counter-example
        inner = np.sort(np.concatenate([[rng.uniform(0.9, 0.99)], rng.uniform(0.6, 0.9, r - 2)
                                        ]))[::-1]
    return np.concatenate([[1.0], inner, [0.0]])


def instance(seed, kind, csi, schedule=False, max_clients=5, max_rank=4, fixed=None):
    """A round's numbers, the controller's context built from them, and the oracle
    (``fixed``: every client's error profile, eps(0..r))."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, max_clients + 1))
    ranks = rng.integers(1, max_rank + 1, n)
    if fixed is not None:
        ranks[:] = len(fixed) - 1
    big_r = int(ranks.max())
    c = 10 ** rng.uniform(5.5, 8, n)
    g0 = rng.exponential(size=n) + 0.01
    band = float(rng.uniform(1e6, 1e7))
    downlink, compute = 0.01, rng.uniform(0, 0.02, n)
    start = downlink + compute
    bits = np.zeros((n, big_r + 1))
    steps = rng.uniform(2e4, 2e5, (n, big_r)) * rng.uniform(0.5, 1.5, (n, big_r))
    bits[:, 1:] = rng.uniform(1e3, 2e4, n)[:, None] + np.cumsum(steps, axis=1)
    eps = np.zeros((n, big_r + 1))
    for k in range(n):
        eps[k, : ranks[k] + 1] = profile(rng, int(ranks[k]), kind) if fixed is None else fixed
    weights = rng.uniform(10, 100, n)
    v, budget, queue = float(rng.uniform(0.1, 10)), float(rng.uniform(0.05, 2)), \
        float(rng.uniform(0.01, 5))
    big_v = v * budget**2
    p = weights / weights.sum()
    cost = np.full((n, big_r + 1), np.inf)
    for k in range(n):
        cost[k, 1 : ranks[k] + 1] = big_v * p[k] * eps[k, 1 : ranks[k] + 1]
        if schedule:
            cost[k, 0] = big_v * p[k]  # the whole update lost (participation queues 0)
    if csi == "instantaneous":
        until = np.full(n, np.inf)
        gains, probs = np.zeros((n, 1)), np.zeros((n, 1))
        uplink = None
    else:
        until = rng.uniform(0.005, 0.05, n)
        nodes = int(rng.integers(2, 6))
        gains = rng.exponential(size=(n, nodes)) * rng.uniform(0.5, 2)
        probs = rng.dirichlet(np.ones(nodes), n)
        law = WindowLaw(np.concatenate([g0[:, None], gains], 1),
                        np.concatenate([np.ones((n, 1)), probs], 1),
                        np.concatenate([np.full((n, 1), -np.inf),
                                        np.repeat(until[:, None], nodes, 1)], 1),
                        np.concatenate([until[:, None], np.full((n, nodes), np.inf)], 1))
        uplink = UplinkModel(c, law)
    ctx = RoundContext(0, np.arange(n), c * g0, downlink, compute, bits[np.arange(n), ranks],
                       ranks, band, budget, queue, weights=weights, bits=bits, eps=eps,
                       uplink=uplink)
    oracle = Oracle(c, g0, until, gains, probs, start, bits, cost, band, queue)
    lowest = 0 if schedule else 1
    choices = [range(lowest, int(r) + 1) for r in ranks]
    params = dict(v=v)
    return ctx, oracle, choices, params


def check(ctrl, ctx, oracle, choices, tol):
    """TSFA's decision scored by the oracle: within ``tol`` of the optimum, in the band."""
    alloc = ctrl.online(ctx)
    m, b = np.asarray(alloc.keep_ranks), np.asarray(alloc.bandwidth_hz)
    assert np.all(b >= 0) and b.sum() <= ctx.bandwidth_hz * (1 + 1e-9)
    assert all(m[k] in choices[k] for k in range(len(m))) and np.any(m > 0)
    assert np.all(b[m == 0] == 0)
    j_star, _ = oracle.best(choices)
    j = oracle.score(m, b)
    return j / j_star - 1


# ---------------------------------------------------------------------- the tests

@pytest.mark.parametrize("kind", ["convex", "nonconvex"])
@pytest.mark.parametrize("csi", ["instantaneous", "window"])
def test_the_fast_solver_is_optimal_against_an_independent_brute_force(kind, csi):
    """30 rounds per cell (120 in all), up to 5 clients and rank 4."""
    worst = -np.inf
    for seed in range(30):
        ctx, oracle, choices, params = instance(10_000 + seed, kind, csi)
        worst = max(worst, check(TSFA(TSFAParams(**params)), ctx, oracle, choices, 1e-6))
    assert worst <= 1e-6


def test_exactness_does_not_rest_on_the_grid_or_the_local_search():
    """With two grid points, no zoom and no local moves the branch and bound alone
    finds the optimum (the search before it missed 15 of 100 of these by up to 26%)."""
    worst = -np.inf
    for seed in range(50):
        ctx, oracle, choices, params = instance(10_000 + seed, "nonconvex",
                                                ["instantaneous", "window"][seed % 2])
        ctrl = TSFA(TSFAParams(grid=2, refine=0, polish_max_clients=0, **params))
        worst = max(worst, check(ctrl, ctx, oracle, choices, 1e-6))
    assert worst <= 1e-6


@pytest.mark.parametrize("csi", ["instantaneous", "window"])
def test_the_cvxpy_milp_reference_is_optimal_against_the_brute_force(csi):
    worst = -np.inf
    for seed in range(12):
        ctx, oracle, choices, params = instance(20_000 + seed, "nonconvex", csi)
        ctrl = TSFA(TSFAParams(solver="cvxpy", **params))
        worst = max(worst, check(ctrl, ctx, oracle, choices, 1e-6))
    assert worst <= 1e-6


def test_scheduling_is_optimal_against_the_brute_force():
    worst = -np.inf
    for seed in range(30):
        ctx, oracle, choices, params = instance(30_000 + seed, "nonconvex",
                                                ["instantaneous", "window"][seed % 2],
                                                schedule=True, max_clients=4)
        ctrl = TSFAScheduled(TSFAScheduled.Params(min_participation=0.0, **params))
        worst = max(worst, check(ctrl, ctx, oracle, choices, 1e-6))
    assert worst <= 1e-6


def test_the_issues_counter_example_profile():
    """eps = (1, 0.98, 0.85, 0): the interpolation of the old convex relaxation was
    wrong here (its maximum of segment lines gave eps(1) = 1.70, and it ended 2.1%
    above the optimum on one of these ten rounds); both solvers are optimal."""
    worst = -np.inf
    for seed in range(10):
        ctx, oracle, choices, params = instance(40_000 + seed, "convex", "window",
                                                fixed=[1.0, 0.98, 0.85, 0.0])
        for solver in ("fast", "cvxpy"):
            ctrl = TSFA(TSFAParams(solver=solver, **params))
            worst = max(worst, check(ctrl, ctx, oracle, choices, 1e-6))
    assert worst <= 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["convex", "nonconvex"])
def test_the_fast_solver_on_1200_instances(kind):
    """The issue's scale: 600 rounds per profile kind, both CSI kinds."""
    worst = -np.inf
    for seed in range(600):
        ctx, oracle, choices, params = instance(50_000 + seed, kind,
                                                ["instantaneous", "window"][seed % 2])
        worst = max(worst, check(TSFA(TSFAParams(**params)), ctx, oracle, choices, 1e-6))
    assert worst <= 1e-6
