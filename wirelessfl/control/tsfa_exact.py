"""TSFA's exact online decision: branch and bound on the deadline with exact knapsacks.

:func:`exact_search` runs :func:`~wirelessfl.control.deadline_search.branch_and_bound`
for a TSFA controller: each queried deadline gets exact needed bandwidths
(:func:`needs_at`), then an exact rank choice (the Pareto-frontier knapsack, or the
MILP of the ``cvxpy`` reference), and each answer is scored by its exact min-max
latency. The deadlines the scalar search already bounded split the range into
intervals with lower bounds from the knapsack on the rate table's lower needs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from wirelessfl.control.base import RoundContext
from wirelessfl.control.deadline_search import SearchResult, branch_and_bound
from wirelessfl.control.rate_table import choose_ranks_exact_many
from wirelessfl.control.tsfa_cvxpy import RankMILP


def needs_at(ctx: RoundContext, bits: np.ndarray, taus: np.ndarray,
             tables: dict) -> np.ndarray:
    """Exact needed bandwidths for every deadline in ``taus`` (K,) and every payload of
    ``bits`` (n, R + 1), Hz, shape (K, n, R + 1) (column 0 needs nothing); each table
    goes to ``tables`` as its own lower and upper bound."""
    n, width = bits.shape
    k_n = len(taus)
    tau = np.repeat(taus, width - 1)[None, :] * np.ones((n, 1))  # (n, K R)
    start = None
    if tables:  # Newton from the table of the nearest deadline already bounded
        near = [tables[min(tables, key=lambda t: abs(t - x))][1][:, 1:] for x in taus]
        start = np.concatenate(near, axis=1)
    flat = ctx.plan.needed_bandwidth(np.tile(bits[:, 1:], k_n), ctx.start_s, tau,
                                     ctx.bandwidth_hz, start_hz=start)
    need = np.zeros((k_n, n, width))
    need[:, :, 1:] = flat.reshape(n, k_n, width - 1).transpose(1, 0, 2)
    for t, nd in zip(taus, need, strict=True):
        tables[float(t)] = (nd, nd)
    return need


def milp(ctrl: Any, n: int, choices: int) -> RankMILP:
    """The controller's MILP for this problem size, built once."""
    key = (n, choices)
    if key not in ctrl._problems:
        ctrl._problems[key] = RankMILP(n, choices)
    return ctrl._problems[key]


def exact_search(ctrl: Any, ctx: RoundContext, cost: np.ndarray, bits: np.ndarray,
                 tables: dict, least_lo: float, m: np.ndarray, j: float) -> SearchResult:
    """The least-J rank vector of the round for the TSFA controller ``ctrl``, from the
    incumbent ``(m, j)``.

    Deadlines run from one where nothing fits (``least_lo``, below the latency with
    one rank each; the earliest upload start with scheduling) to the latency of the
    least-cost vector (above it J only grows). ``cost`` (n, R + 1) is TSFA's cost
    table, ``bits`` the payloads with column 0 zero, ``tables`` the needed-bandwidth
    bounds of the deadlines already evaluated (filled further).
    """
    n = len(m)
    rows = np.arange(n)
    cheapest = np.argmin(cost, axis=1)  # the least cost per client, fewest bits on ties
    j_min, hi_s, _ = ctrl.objective(ctx, cheapest, cost)
    if j_min < j:
        m, j = cheapest, j_min
    lo_s = float(np.min(ctx.start_s)) if ctrl.params.schedule else least_lo
    use_milp = ctrl.params.solver == "cvxpy"

    def query(taus: list[float], caps: list[float]
              ) -> list[tuple[np.ndarray, float, float, float] | None]:
        need = needs_at(ctx, bits, np.asarray(taus), tables)  # (K, n, R + 1)
        if use_milp:
            ms = [milp(ctrl, *cost.shape).solve(cost, nd, ctx.bandwidth_hz) for nd in need]
        else:
            m_all, ok = choose_ranks_exact_many(cost, need, ctx.bandwidth_hz,
                                                max_frontier=None, cap=np.asarray(caps))
            ms = [m_all[i] if ok[i] else None for i in range(len(taus))]
        # leaving everyone out is no answer: every m > 0 costs less than m = 0, so the
        # knapsack leaves all out only when no client can send by the deadline
        ms = [m_ if m_ is not None and np.any(m_ > 0) else None for m_ in ms]
        at = [i for i, m_ in enumerate(ms) if m_ is not None]
        out: list[tuple[np.ndarray, float, float, float] | None] = [None] * len(taus)
        if not at:
            return out
        m_ok = np.array([ms[i] for i in at])  # (K', n)
        s_ok = np.where(m_ok > 0, bits[rows[None, :], m_ok], 0.0).T  # (n, K')
        fit = np.where(s_ok > 0, need[np.asarray(at)[:, None], rows[None, :], m_ok].T, 0.0)
        lo, _ = ctx.plan.deadline_bracket(ctx.start_s, s_ok, ctx.bandwidth_hz)
        hi = np.asarray(taus, dtype=float)[at]
        # each vector fits by its deadline with these needs: the bracket's top
        scored = ctrl._scores(ctx, list(m_ok), cost, (np.minimum(lo, hi), hi, fit))
        for i, row, (j_, tau_, _) in zip(at, m_ok, scored, strict=True):
            out[i] = (row, j_, float(cost[rows, row].sum()), tau_)
        return out

    if not (np.isfinite(hi_s) and np.isfinite(lo_s) and lo_s < hi_s):
        return branch_and_bound(query, ctx.queue, [(-math.inf, hi_s, hi_s)], m, j)
    # the deadlines already bounded split the range; over (a, c] J is at least the
    # knapsack's cost at c on the lower needs, plus Q a (inf: nothing fits by c)
    taus = sorted(t for t in tables if lo_s < t < hi_s)
    floor = np.zeros(0)
    if taus:
        low = np.stack([tables[t][0] for t in taus])
        m_low, ok = choose_ranks_exact_many(cost, low, ctx.bandwidth_hz, max_frontier=None)
        floor = np.where(ok, cost[rows[None, :], m_low].sum(axis=1), math.inf)
    ends = [lo_s, *taus, hi_s]
    floors = [*floor, float(cost[rows, cheapest].sum())]
    regions = [(f + ctx.queue * a, a, c)
               for a, c, f in zip(ends[:-1], ends[1:], floors, strict=True) if np.isfinite(f)]
    return branch_and_bound(query, ctx.queue, regions, m, j)
