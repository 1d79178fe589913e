"""TSFA: the two-stage controller (offline structural rank, online Lyapunov control).

Online stage (every round t; the full formulation is in docs/tsfa.md). With the
virtual queue ``Q(t+1) = max(Q(t) + T(t) - T_budget, 0)``, choose kept ranks m_k and
bandwidths b_k to minimise the drift-plus-penalty bound

    V sum_k p_k eps_k(m_k) + Q(t) tau
    s.t.  S_k(m_k) <= D_k(b_k, tau),   sum_k b_k <= B,   1 <= m_k <= r_k,

where ``eps_k`` is the client's reported sparsification error, ``S_k(m)`` its payload
and ``D_k(b, tau)`` the bits that bandwidth b is expected to deliver between the
client's upload start and tau under the channel's law over that window
(:mod:`wirelessfl.control.planning`): the known gain while the current coherence
block lasts, the channel's (conditional) law after it.

For a fixed tau the problem separates: client k needs bandwidth
``beta_k(m, tau) = min{b : D_k(b, tau) >= S_k(m)}`` for m ranks, and the choice of
ranks is ``min sum_k p_k eps_k(m_k) s.t. sum_k beta_k(m_k, tau) <= B``, a
multiple-choice knapsack. With g(tau) its least cost, the round's problem is
``min_tau g(tau) + Q tau``; g is a step function, and the optimum sits at one of its
steps. Up to ``exact_max_clients`` clients the decision is exact for any error
profile (no convexity assumed):

* a scalar search on tau (a grid between the smallest feasible latency and the
  full-rank min-max latency, then zoom steps around the best) from the round's rate
  table (:mod:`wirelessfl.control.rate_table`) finds a good incumbent fast;
* a branch and bound on tau (:mod:`wirelessfl.control.deadline_search`,
  :mod:`wirelessfl.control.tsfa_exact`) then proves or improves it: each queried
  deadline gets exact needs and an exact knapsack (``fast``: the Pareto-frontier
  programme; ``cvxpy``, the reference: a MILP solved by HiGHS), and every interval
  of deadlines is closed by a lower bound on J.

Above ``exact_max_clients`` the knapsack is solved by Lagrangian relaxation and a
greedy fill, the best choice *settled* at its own latency, and single-rank moves
(up to ``polish_max_clients``) finish it: fast, but with no certificate.

With ``schedule: true`` (the ``tsfa_sched`` variant) a client may also be left out
of the round (``m_k = 0``, no bandwidth, its update not sent), at the price of its
whole update (``eps_k(0) = 1``) and of its participation queue
``Z_k(t+1) = max(Z_k + pi_min - 1[k sent], 0)``, which holds each client's long-term
participation rate at ``min_participation`` or above (drift-plus-penalty adds
``Z_k`` to the cost of leaving k out).

A failed or infeasible solve never stops the run: that tau is skipped, and if no
tau solves, the allocation falls back to min-max bandwidth with full rank (logged
as ``tsfa_fallback`` and an event).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.control.base import (
    Allocation,
    Controller,
    Preparation,
    RoundContext,
    planned_latency_s,
    register_controller,
    sent_bits,
)
from wirelessfl.control.baselines import bits_at, minmax_blocks
from wirelessfl.control.knapsack import choose_ranks
from wirelessfl.control.rate_table import (
    RateTable,
    choose_ranks_exact_many,
    choose_ranks_many,
)
from wirelessfl.control.tsfa_exact import exact_search, needs_at

ZOOM_POINTS = 8  # new deadlines per zoom step of the scalar search


class TSFAParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    v: float = Field(4.0, gt=0, le=1e12, allow_inf_nan=False,
                     description="Lyapunov weight V, in units of T_budget^2")
    grid: int = Field(24, ge=2, le=200, description="tau grid points of the scalar search")
    refine: int = Field(2, ge=0, le=20, description="zoom steps of the scalar search (each "
                        "evaluates 8 deadlines across the two cells around the best)")
    polish_max_clients: int = Field(64, ge=0, le=100_000,
                                    description="local search up to this many clients")
    exact_max_clients: int = Field(
        16, ge=0, le=100_000, description="exact decision (branch and bound on the deadline, "
        "exact knapsacks) up to this many clients (above: Lagrangian relaxation, greedy "
        "fill and local search)")
    solver: Literal["auto", "fast", "cvxpy"] = Field(
        "auto", description="per-deadline knapsack: fast (numpy Pareto frontier) or the "
        "cvxpy reference (a MILP solved by HiGHS, exact at every size); auto = fast")
    schedule: bool = Field(False, description="may leave clients out of a round (m = 0)")
    min_participation: float = Field(
        0.0, ge=0, le=1, allow_inf_nan=False,
        description="with schedule: long-term share of rounds each client takes part in")
    rank_candidates: list[Annotated[int, Field(ge=1, le=1024)]] | None = Field(
        None, min_length=1, max_length=64,
        description="offline stage: structural ranks to choose from (None: no offline)"
    )
    lambda_candidates: list[Annotated[float, Field(ge=0, le=1e6)]] | None = Field(
        None, min_length=1, max_length=64,
        description="offline stage: orthogonality weights to choose from"
    )
    pilot_clients: int = Field(2, ge=1, le=10_000, description="offline pilot: clients trained")
    pilot_latency_rounds: int = Field(
        20, ge=1, le=10_000, description="offline pilot: timeline rounds averaged per "
        "expected latency")
    weight_rank: float = Field(1.0, ge=0, le=1e6, description="offline surrogate: rank-term weight")
    weight_sparse: float = Field(1.0, ge=0, le=1e6, description="offline surrogate: sparsification")
    weight_cov: float = Field(0.5, ge=0, le=1e6, description="offline surrogate: covariance term")


@register_controller("tsfa")
class TSFA(Controller):
    """Two-stage federated allocation: Lyapunov control of bandwidth and kept ranks."""

    Params = TSFAParams
    needs_budget = True
    uses_queue = True

    def __init__(self, params: TSFAParams | None = None) -> None:
        super().__init__(params)
        self._problems: dict = {}  # the cvxpy reference's MILP per problem size
        self.participation: dict[int, float] = {}  # Z_k per client id
        self._narrow = None  # within a fast decision: the round's RateTable.narrow
        self._scored: dict | None = None  # within a decision: (J, tau*, b*) by rank vector

    # ------------------------------------------------------------------ helpers

    def weight_v(self, ctx: RoundContext) -> float:
        budget = ctx.latency_budget_s or 1.0
        return self.params.v * budget**2

    def costs(self, ctx: RoundContext) -> np.ndarray:
        """Per-client cost of each choice m = 0..R, shape (n, R + 1); inf where not allowed.

        ``V p_k eps_k(m)`` for ``1 <= m <= r_k``; with scheduling, ``m = 0`` costs
        ``V p_k + Z_k`` (the whole update is lost; its participation queue grows).
        """
        ranks = np.asarray(ctx.ranks, dtype=int)
        n, big_r = len(ranks), int(ranks.max())
        cols = np.arange(big_r + 1)[None, :]
        eps = ctx.eps if ctx.eps is not None else np.zeros((n, big_r + 1))
        cost = self.weight_v(ctx) * ctx.p[:, None] * eps[:, : big_r + 1]
        allowed = (cols >= 1) & (cols <= ranks[:, None])
        if ctx.eps is None:
            allowed = cols == ranks[:, None]
        if self.params.schedule:
            z = np.array([self.participation.get(int(k), 0.0) for k in ctx.client_ids])
            cost[:, 0] = self.weight_v(ctx) * ctx.p + z
            allowed = allowed | (cols == 0)
        return np.where(allowed, cost, np.inf)

    def objective(self, ctx: RoundContext, m: np.ndarray,
                  cost: np.ndarray | None = None) -> tuple[float, float, np.ndarray]:
        """True discrete objective of integer ranks m: ``(J, tau*(m), b*(m))``.

        ``tau*`` is the exact min-max latency of the clients that send (m > 0) under
        the planner's uplink model.
        """
        cost = self.costs(ctx) if cost is None else cost
        return self._scores(ctx, [m], cost)[0]

    def objectives(self, ctx: RoundContext, candidates: list[np.ndarray],
                   cost: np.ndarray) -> np.ndarray:
        """:meth:`objective`'s J for many rank vectors, their min-max latencies solved
        together; shape (C,)."""
        return np.array([r[0] for r in self._scores(ctx, candidates, cost)])

    def _objectives_in(self, ctx: RoundContext, candidates: list[np.ndarray],
                       which: list[int], cost: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                       fit: np.ndarray) -> np.ndarray:
        """:meth:`objectives` of ``candidates[i]`` for i in ``which``, each min-max
        latency searched inside its known bracket ``(lo, hi]`` (needs ``fit`` by hi)."""
        idx = np.asarray(which)
        bracket = (lo[idx], hi[idx], fit[:, idx])
        return np.array([r[0] for r in self._scores(ctx, [candidates[i] for i in which],
                                                    cost, bracket)])

    def _scores(self, ctx: RoundContext, candidates: list[np.ndarray], cost: np.ndarray,
                bracket: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                ) -> list[tuple[float, float, np.ndarray]]:
        """``(J, tau*, b*)`` per rank vector; within a decision each vector is solved
        once (kept in ``_scored``), the new ones as columns of one min-max call, its
        deadline brackets narrowed by the round's rate table (``_narrow``) if any, or
        given per candidate (``bracket``: lo, hi (C,) and needs (n, C) that fit by hi,
        as :meth:`UplinkModel.minmax` takes them)."""
        ms = [np.asarray(c, dtype=np.int64) for c in candidates]
        seen = self._scored if self._scored is not None else {}
        first = {}
        for i, m_ in enumerate(ms):
            if m_.tobytes() not in seen:
                first.setdefault(m_.tobytes(), i)
        todo = [ms[i] for i in first.values()]
        if todo:
            if bracket is not None:
                at = list(first.values())
                bracket = (bracket[0][at], bracket[1][at], bracket[2][:, at])
            m = np.array(todo)  # (C, n)
            n = m.shape[1]
            err = cost[np.arange(n)[None, :], m].sum(axis=1)
            bits = np.where(m > 0, np.stack([bits_at(ctx, np.maximum(row, 1)) for row in m]),
                            0.0)
            with np.errstate(invalid="ignore"):
                tau, b = ctx.plan.minmax(ctx.start_s, bits.T, ctx.bandwidth_hz,
                                         narrow=self._narrow, bracket=bracket)
            tau = np.where(np.any(m > 0, axis=1), tau, float(np.max(ctx.start_s)))
            for c, row in enumerate(todo):
                seen[row.tobytes()] = (
                    (float(err[c] + ctx.queue * tau[c]), float(tau[c]), b[:, c].copy())
                    if np.isfinite(err[c]) else (math.inf, math.inf, np.zeros(n)))
        return [seen[m_.tobytes()] for m_ in ms]

    def per_tau_fast(self, ctx: RoundContext, tau: float, cost: np.ndarray,
                     bits: np.ndarray, tables: dict | None = None) -> np.ndarray | None:
        """Ranks minimising the error at deadline tau, for a round above
        ``exact_max_clients`` (the settling step); None: infeasible.

        The needed bandwidths are exact (:func:`~wirelessfl.control.tsfa_exact.needs_at`,
        which adds them to ``tables``); the knapsack is the Lagrangian relaxation and a
        greedy fill (rounds up to ``exact_max_clients`` are decided by the exact search).
        """
        need = needs_at(ctx, bits, np.array([tau]), {} if tables is None else tables)[0]
        out = choose_ranks(cost, need, ctx.bandwidth_hz)
        return None if out is None else out[0]

    def per_tau_table(self, ctx: RoundContext, taus: np.ndarray, cost: np.ndarray,
                      bits: np.ndarray, table: RateTable,
                      tables: dict) -> list[np.ndarray | None]:
        """Ranks for many deadlines at once from the round's rate table (``fast``).

        Each tau's knapsack uses the table's upper bounds on the needed bandwidths,
        so its choice surely fits by tau; the bounds go to ``tables``.
        """
        lower, upper = table.bounds(bits[:, 1:], taus)  # (n, T, R)
        pad = np.zeros((len(cost), len(taus), 1))
        lower = np.concatenate([pad, lower], axis=2)
        upper = np.concatenate([pad, upper], axis=2)
        for i, t in enumerate(taus):
            tables[float(t)] = (lower[:, i], upper[:, i])
        need = np.moveaxis(upper, 1, 0)  # (T, n, R + 1)
        solve = (choose_ranks_exact_many if len(cost) <= self.params.exact_max_clients
                 else choose_ranks_many)
        m, ok = solve(cost, need, ctx.bandwidth_hz)
        return [m[i] if ok[i] else None for i in range(len(taus))]

    # ------------------------------------------------------------------ the stage

    def prepare(self, scenario: Any, build: Callable[[Any], Any],
                offline: bool = True) -> Preparation:
        """The offline stage (:mod:`wirelessfl.control.tsfa_offline`) when
        ``rank_candidates`` is set: the pilot picks the structural rank and
        orthogonality weight the run is built with."""
        p = self.params
        if not p.rank_candidates:
            return Preparation(scenario)
        from wirelessfl.compression import COMPRESSORS
        from wirelessfl.control import tsfa_offline

        comp = COMPRESSORS.get(scenario.method.compressor)
        tsfa_offline.check(scenario, p, "lambda_orth" in comp.Params.model_fields)
        if not offline:
            return Preparation(scenario, info={
                "tsfa_offline_rank": "not chosen (--offline runs the pilot and shows it)"})
        final, rows = tsfa_offline.prepare(scenario, p, build)
        return Preparation(final, {"tsfa_offline": rows},
                           {"tsfa_offline_rank": final.model.lora.rank})

    def to_blocks(self, ctx: RoundContext, alloc: Allocation, block_hz: float) -> Allocation:
        """The ranks re-chosen on the objective in whole blocks, then the blocks
        (:func:`~wirelessfl.control.blocks.ranks_in_blocks`; who is scheduled stays
        as decided): pairs of moves up to ``exact_max_clients`` senders, single moves
        up to ``polish_max_clients``, above that TSFA's ranks as they are."""
        from wirelessfl.control.blocks import block_count, ranks_in_blocks, with_blocks

        m = None if alloc.keep_ranks is None else np.asarray(alloc.keep_ranks, dtype=int)
        if m is None or ctx.bits is None or ctx.queue <= 0 or not np.any(m > 0):
            return minmax_blocks(ctx, alloc, block_hz)  # no ranks to trade: its payloads
        n = int(np.sum(m > 0))  # pairs of moves up to the exact size, single moves up to
        # the local search's: the per-round cost stays bounded as the round grows
        m, blocks = ranks_in_blocks(ctx, self.costs(ctx), m,
                                    block_count(ctx.bandwidth_hz, block_hz), block_hz,
                                    pairs=n <= self.params.exact_max_clients,
                                    search=n <= self.params.polish_max_clients)
        alloc = replace(alloc, keep_ranks=m, metrics={
            **alloc.metrics, "tsfa_keep_ratio": float(np.mean(m / np.asarray(ctx.ranks)))})
        return with_blocks(ctx, alloc, blocks, block_hz, sent_bits(ctx, m))

    def online(self, ctx: RoundContext) -> Allocation:
        try:
            return self._decide(ctx)
        finally:  # the round's table and scores never leak into a later call
            self._narrow, self._scored = None, None

    def _decide(self, ctx: RoundContext) -> Allocation:
        t0 = time.perf_counter()
        ranks = np.asarray(ctx.ranks, dtype=int)
        n = len(ranks)
        full = ranks.copy()
        if ctx.eps is None or ctx.bits is None or ctx.queue <= 0 or n == 0:
            # nothing to trade (Q = 0: latency is free this round) -> full rank
            _, b = ctx.plan.minmax(ctx.start_s, bits_at(ctx, full), ctx.bandwidth_hz)
            return self._result(ctx, full, b, t0, solves=0, fallback=0, least_s=0.0)

        big_r = int(ranks.max())
        cost = self.costs(ctx)
        bits = np.array(ctx.bits[:, : big_r + 1], dtype=float)
        bits[:, 0] = 0.0
        ones = np.ones(n, dtype=int)
        use_cvxpy = self.params.solver == "cvxpy"
        exact = use_cvxpy or n <= self.params.exact_max_clients
        rate_table = None if use_cvxpy else RateTable(ctx.plan, ctx.start_s, ctx.bandwidth_hz)
        self._narrow = None if rate_table is None else rate_table.narrow
        self._scored = {}
        least, tau_hi = self._ends(ctx, full, ones, rate_table)
        # per evaluated tau: bounds (lower, upper) of the needed-bandwidth table (n, R + 1)
        tables: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        if use_cvxpy:  # the reference starts from the two ends alone
            solves, candidates = 0, [full, ones]
            scores = self.objectives(ctx, candidates, cost)
            found_any = False
        else:
            solves, candidates, scores, found_any = self._grid_search(
                ctx, cost, bits, rate_table, tables, least[1], tau_hi, full, ones)
        # a round needs a sender: the all-zero vector (scheduling) is no candidate
        scores = np.where([np.any(c > 0) for c in candidates], scores, math.inf)
        i_best = int(np.argmin(scores))
        m, j_best = candidates[i_best].copy(), float(scores[i_best])
        events = []
        if exact:  # branch and bound on the deadline: the optimum, certified
            found = exact_search(self, ctx, cost, bits, tables, least[0], m, j_best)
            m, j_best, solves = found.m, found.j, solves + found.queries
            found_any = found_any or found.answered > 0
            if found.gap > 0:
                events.append({"event": "tsfa_uncertified", "gap": found.gap})
        elif np.isfinite(j_best):
            m = self.settle(ctx, m, cost, bits, dict(tables))
            if n <= self.params.polish_max_clients:
                m = self.settle(ctx, self.polish(ctx, m, cost), cost, bits, dict(tables))
        fallback = int(not (found_any and np.isfinite(j_best)))  # no deadline solved
        if not np.isfinite(j_best):
            m = full.copy()
        if not np.any(m > 0):
            m = self.best_single_sender(ctx, cost)
        _, _, b = self.objective(ctx, m, cost)
        if self.params.schedule:
            self._update_participation(ctx, m)
        budget = ctx.latency_budget_s
        if budget is not None and least[0] <= budget < least[1]:  # the bracket can't tell
            least = (self.objective(ctx, ones, cost)[1],) * 2
        out = self._result(ctx, m, b, t0, solves, fallback, least_s=least[1])
        return replace(out, events=[*out.events, *events])

    def _grid_search(self, ctx: RoundContext, cost: np.ndarray, bits: np.ndarray,
                     rate_table: RateTable, tables: dict, tau_lo: float, tau_hi: float,
                     full: np.ndarray, ones: np.ndarray
                     ) -> tuple[int, list[np.ndarray], np.ndarray, bool]:
        """The scalar search on tau from the round's rate table: ``grid`` deadlines,
        then ``refine`` zoom steps; every distinct choice and the two ends scored by
        the true objective (only those whose bounds can still win). Returns the
        deadlines solved, the candidates, their J (inf: not scored) and whether any
        deadline's knapsack gave a choice."""
        n = len(full)
        cache: dict[float, float] = {}
        found: dict[bytes, np.ndarray] = {}  # every distinct per-tau choice
        solves = 0

        def evaluate_many(taus: list[float]) -> list[float]:
            nonlocal solves
            new = sorted({t for t in taus if t not in cache})
            if new:
                solves += len(new)
                choices = self.per_tau_table(ctx, np.array(new), cost, bits, rate_table,
                                             tables)
                for t, m_ in zip(new, choices, strict=True):
                    if m_ is None:
                        cache[t] = math.inf
                        continue
                    # m is feasible at tau, so tau bounds its own min-max latency
                    cache[t] = float(cost[np.arange(n), m_].sum()) + ctx.queue * t
                    found.setdefault(m_.tobytes(), m_.copy())
            return [cache[t] for t in taus]

        if np.isfinite(tau_lo) and np.isfinite(tau_hi):
            lo = tau_lo * (1 + 1e-9)
            grid = np.linspace(lo, max(tau_hi, lo * (1 + 1e-9)), self.params.grid)
            vals = evaluate_many([float(t) for t in grid])
            for _ in range(self.params.refine):  # zoom: the cells either side of the best
                i = int(np.argmin(vals))
                a_, b_ = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
                grid = np.linspace(a_, b_, ZOOM_POINTS + 2)
                vals = evaluate_many([float(t) for t in grid])

        # the endpoints and every distinct per-tau choice, scored by the true objective
        # (a choice made at tau may finish well before tau)
        candidates = [full, ones, *found.values()]
        candidates, (lo_t, hi_t, fit) = self.shortlist(ctx, candidates, tables, tau_lo,
                                                       tau_hi)
        err = np.array([cost[np.arange(n), c].sum() for c in candidates])
        lower, upper = err + ctx.queue * lo_t, err + ctx.queue * hi_t
        # only the candidates whose lower bound on J reaches the best upper bound
        keep = np.flatnonzero(lower <= upper.min() * (1 + 1e-12) + 1e-300)
        candidates = [candidates[i] for i in keep]
        lo_t, hi_t, fit, lower, upper = (lo_t[keep], hi_t[keep], fit[:, keep], lower[keep],
                                         upper[keep])
        # the most promising first, alone; then only those its exact J leaves in
        first = int(np.argmin(upper))
        j_first = float(self._objectives_in(ctx, candidates, [first], cost, lo_t, hi_t,
                                            fit)[0])
        rest = [i for i in range(len(candidates))
                if i != first and lower[i] <= j_first * (1 + 1e-12) + 1e-300]
        scores = np.full(len(candidates), math.inf)
        scores[first] = j_first
        if rest:
            scores[rest] = self._objectives_in(ctx, candidates, rest, cost, lo_t, hi_t, fit)
        return solves, candidates, scores, bool(found)

    def _ends(self, ctx: RoundContext, full: np.ndarray, ones: np.ndarray,
              table: RateTable | None) -> tuple[tuple[float, float], float]:
        """The scalar search's range: a bracket ``(lo, hi]`` of the min-max latency
        with one rank each, and a deadline by which full rank surely fits. From the
        rate table where it can tell (the exact latencies otherwise)."""
        two = np.stack([bits_at(ctx, full), bits_at(ctx, ones)], axis=1)
        if table is not None:
            lo, hi = ctx.plan.deadline_bracket(ctx.start_s, two, ctx.bandwidth_hz)
            if np.all(np.isfinite(hi)):
                lo, hi, fit = table.narrow(two, lo, hi, iters=16, rtol=1e-3)
                if np.all(np.isfinite(fit)):
                    return (float(lo[1]), float(hi[1])), float(hi[0])
        ends, _ = ctx.plan.minmax(ctx.start_s, two, ctx.bandwidth_hz, narrow=self._narrow)
        return (float(ends[1]), float(ends[1])), float(ends[0])

    def shortlist(self, ctx: RoundContext, candidates: list[np.ndarray],
                  tables: dict[float, tuple[np.ndarray, np.ndarray]], tau_lo: float,
                  tau_hi: float) -> tuple[list[np.ndarray],
                                          tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Brackets of the candidates' min-max latencies from the evaluated deadlines.

        Every evaluated tau has bounds on the needed-bandwidth table. A candidate
        surely fits by tau where its upper needs sum to at most B, and surely does
        not where its lower needs sum to more, so its ``tau*`` lies in ``(lo, hi]``
        with ``lo`` the largest tau where it surely does not fit and ``hi`` the
        smallest where it surely does. Returns the candidates (without repeats) and
        ``(lo, hi, needs)``: (C,), (C,) and the upper needs that fit by ``hi`` (n, C),
        NaN where not known (the bracket's ends are then the smallest start and
        just past ``tau_hi``, which every candidate meets).
        """
        uniq = list({c.tobytes(): c for c in candidates}.values())
        m = np.array(uniq)
        c_n, n = m.shape
        lo = np.full(c_n, float(np.min(ctx.start_s)))
        hi = np.full(c_n, tau_hi * (1 + 1e-9))
        fit = np.full((n, c_n), np.nan)
        if not tables or not (np.isfinite(tau_lo) and np.isfinite(tau_hi)):
            return uniq, (lo, hi, fit)
        width = next(iter(tables.values()))[0].shape[1]
        at = np.arange(n)[None, :] * width + m  # (C, n) into a flattened (n, R + 1) table
        big_b = ctx.bandwidth_hz
        open_ = np.ones(c_n, dtype=bool)  # no fitting tau seen yet
        for t in sorted(tables):  # rising: the first that fits is the smallest
            low, up = tables[t]
            need = up.ravel()[at]  # (C, n)
            fits = open_ & (need.sum(axis=1) <= big_b)
            hi[fits], fit[:, fits] = t, need[fits].T
            open_ &= ~fits
            short = low.ravel()[at].sum(axis=1) > big_b
            lo[open_ & short] = t  # the largest short tau below the first fit
        return uniq, (lo, hi, fit)

    def best_single_sender(self, ctx: RoundContext, cost: np.ndarray) -> np.ndarray:
        """The best vector with exactly one client sending (a round must aggregate one)."""
        n = cost.shape[0]
        best, best_j = None, math.inf
        for k in range(n):
            for r in np.flatnonzero(np.isfinite(cost[k])):
                if r == 0:
                    continue
                m = np.zeros(n, dtype=int)
                m[k] = r
                j = self.objective(ctx, m, cost)[0]
                if j < best_j:
                    best, best_j = m, j
        return best if best is not None else np.asarray(ctx.ranks, dtype=int).copy()

    def settle(self, ctx: RoundContext, m: np.ndarray, cost: np.ndarray, bits: np.ndarray,
               tables: dict | None = None) -> np.ndarray:
        """Re-solve the ranks at ``tau*(m)`` until the objective stops falling.

        The ranks chosen at deadline ``tau*(m)`` fit by that deadline and cost no more
        than m, so each step can only lower ``cost + Q tau*``.
        """
        cur, tau, _ = self.objective(ctx, m, cost)
        for _ in range(20):
            if not np.isfinite(tau):
                break
            nxt = self.per_tau_fast(ctx, tau * (1 + 1e-9), cost, bits, tables)
            if nxt is None:
                break
            j, tau_n, _ = self.objective(ctx, nxt, cost)
            if not j < cur - 1e-12 * max(1.0, abs(cur)):
                break
            m, cur, tau = nxt, j, tau_n
        return m

    def polish(self, ctx: RoundContext, m: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """Single-rank moves on the true objective until none improves it.

        Every move (one client one rank up or down) is scored at once
        (:meth:`objectives`); the best improving one is taken, and again.
        """
        m = m.copy()
        cur = float(self.objectives(ctx, [m], cost)[0])
        n, width = cost.shape
        for _ in range(n * width):
            moves = []
            for k in range(n):
                for step in (1, -1):
                    nxt = m[k] + step
                    if 0 <= nxt < width and np.isfinite(cost[k, nxt]):
                        moved = m.copy()
                        moved[k] = nxt
                        moves.append(moved)
            if not moves:
                break
            scores = self.objectives(ctx, moves, cost)
            i = int(np.argmin(scores))
            if not scores[i] < cur - 1e-12 * max(1.0, abs(cur)):
                break
            m, cur = moves[i], float(scores[i])
        return m

    def _update_participation(self, ctx: RoundContext, m: np.ndarray) -> None:
        pi = self.params.min_participation
        for k, mk in zip(ctx.client_ids, m, strict=True):
            z = self.participation.get(int(k), 0.0)
            self.participation[int(k)] = max(z + pi - float(mk > 0), 0.0)

    def _result(self, ctx: RoundContext, m: np.ndarray, b: np.ndarray, t0: float,
                solves: int, fallback: int, least_s: float) -> Allocation:
        """The allocation, its per-round metrics and, when it fell back or the budget is
        out of reach, a ``controller_fallback`` event; ``least_s`` is the min-max
        latency with one rank each (0 when not computed)."""
        sent = m > 0
        bits = sent_bits(ctx, m)
        planned = planned_latency_s(ctx, np.where(sent, b, 0.0), bits)
        keep = None if ctx.bits is None else m
        metrics = {
            "tsfa_solves": float(solves),
            "tsfa_fallback": float(fallback),
            "tsfa_keep_ratio": float(np.mean(m / np.asarray(ctx.ranks))),
        }
        timings = {"solve_wall_s": time.perf_counter() - t0}
        if ctx.latency_budget_s is not None and ctx.bits is not None:
            # even one rank each, min-max bandwidth, misses the budget: the least is sent
            metrics["tsfa_budget_unreachable"] = float(least_s > ctx.latency_budget_s)
        if self.params.schedule:
            metrics["tsfa_scheduled"] = float(sent.sum())
            metrics["tsfa_participation_queue_max"] = max(self.participation.values(),
                                                          default=0.0)
        events = []
        if metrics["tsfa_fallback"] or metrics.get("tsfa_budget_unreachable"):
            events.append({"event": "controller_fallback", **metrics})
        return Allocation(np.where(sent, b, 0.0), keep, planned, metrics, events, timings)


@register_controller("tsfa_sched")
class TSFAScheduled(TSFA):
    """TSFA that may leave a client out of a round, holding each client's participation."""

    class Params(TSFAParams):
        schedule: bool = Field(True, description="may leave clients out of a round (m = 0)")
        min_participation: float = Field(
            0.8, ge=0, le=1, allow_inf_nan=False,
            description="long-term share of rounds each client takes part in")
