"""TSFA: the two-stage controller (offline structural rank, online Lyapunov control).

Online stage (every round t; the full formulation is in docs/tsfa.md). With the
virtual queue ``Q(t+1) = max(Q(t) + T(t) - T_budget, 0)``, choose kept ranks m_k and
bandwidths b_k to minimise the drift-plus-penalty bound

    V sum_k p_k eps_k(m_k) + Q(t) tau
    s.t.  a_k + S_k(m_k) / R_k(b_k) <= tau,   sum_k b_k <= B,   1 <= m_k <= r_k,

where ``a_k`` is the downlink plus compute time, ``eps_k`` the client's reported
sparsification error (convex, piecewise linear in m), ``S_k(m) <= S0_k + s1_k m`` a
linear upper bound of the payload and ``R_k(b) = b log2(1 + c_k / b)``.

For a fixed tau the problem is convex in (m, b): ``R_k(b) = -rel_entr(b, b + c_k) / ln 2``
is concave, the latency constraint reads ``v_k + w_k m_k <= R_k(b_k)`` with
``v_k = S0_k / (tau - a_k)``, ``w_k = s1_k / (tau - a_k)``, and eps_k is the maximum
of its segments' lines (an epigraph). It is built once per scenario as a cvxpy
problem with Parameters (DPP) and re-solved with CLARABEL for each tau of a scalar
search: a grid between the smallest feasible latency (one rank each) and the
full-rank min-max latency, refined by golden-section search around the best grid
point. The continuous m is rounded down (never breaking the latency), the exact
payloads get min-max bandwidth, and (for up to ``polish_max_clients`` clients) a
local search over single-rank moves on the true discrete objective finishes.

A failed or infeasible solve never stops the run: that tau is skipped, and if no
tau solves, the allocation falls back to min-max bandwidth with full rank (logged
as ``tsfa_fallback``).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.control.bandwidth import LN2, minmax_allocation
from wirelessfl.control.base import (
    Allocation,
    Controller,
    RoundContext,
    planned_latency_s,
    register_controller,
)
from wirelessfl.control.baselines import bits_at

GOLDEN = (math.sqrt(5) - 1) / 2


class TSFAParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    v: float = Field(1.0, gt=0, description="Lyapunov weight V, in units of T_budget^2")
    grid: int = Field(10, ge=2, le=200, description="tau grid points of the scalar search")
    refine: int = Field(8, ge=0, le=50, description="golden-section refinement steps")
    polish_max_clients: int = Field(64, ge=0, description="local search up to this many clients")
    rank_candidates: list[int] | None = Field(
        None, description="offline stage: structural ranks to choose from (None: no offline)"
    )
    lambda_candidates: list[float] | None = Field(
        None, description="offline stage: orthogonality weights to choose from"
    )
    pilot_clients: int = Field(2, ge=1, description="offline pilot: clients trained")
    pilot_latency_rounds: int = Field(
        20, ge=1, description="offline pilot: timeline rounds averaged per expected latency")
    weight_rank: float = Field(1.0, ge=0, description="offline surrogate: rank-term weight")
    weight_sparse: float = Field(1.0, ge=0, description="offline surrogate: sparsification")
    weight_cov: float = Field(0.5, ge=0, description="offline surrogate: covariance term")


def eps_lines(eps: np.ndarray, ranks: np.ndarray, big_r: int) -> tuple[np.ndarray, np.ndarray]:
    """Lines ``alpha + beta m`` whose maximum is the piecewise-linear eps_k on [1, r_k].

    Returns alpha, beta of shape (n, max(big_r - 1, 1)); segment j joins m = j + 1
    and m = j + 2. Segments beyond r_k are the zero line (eps >= 0).
    """
    n = eps.shape[0]
    segs = max(big_r - 1, 1)
    alpha = np.zeros((n, segs))
    beta = np.zeros((n, segs))
    for k in range(n):
        for j in range(min(int(ranks[k]) - 1, segs)):
            m0 = j + 1
            slope = eps[k, m0 + 1] - eps[k, m0]
            beta[k, j] = slope
            alpha[k, j] = eps[k, m0] - slope * m0
    return alpha, beta


def linear_payload(bits: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``S0, s1`` with ``S0 + s1 m >= bits[k, m]`` on 1..r_k and equality at m = 1."""
    n = bits.shape[0]
    s0 = np.empty(n)
    s1 = np.zeros(n)
    for k in range(n):
        r = int(ranks[k])
        row = bits[k, 1 : r + 1]
        s1[k] = float(np.max(np.diff(row))) if r > 1 else 0.0
        s0[k] = row[0] - s1[k]
    return s0, s1


@dataclass
class OnlineProblem:
    """The per-tau convex problem, built once for n clients and max rank R (DPP).

    Scaled for the solver: bandwidth as a share ``x_k = b_k / B`` of the band, rates in
    units of B bit/s, so ``R_k / B = -rel_entr(x_k, x_k + c_k / B) / ln 2`` and
    ``sum x <= 1``; payload coefficients are divided by B accordingly.
    """

    n: int
    big_r: int

    def __post_init__(self) -> None:
        n, segs = self.n, max(self.big_r - 1, 1)
        self.m = cp.Variable(n)
        self.b = cp.Variable(n, nonneg=True)
        self.e = cp.Variable(n)
        self.p = cp.Parameter(n, nonneg=True)
        self.alpha = cp.Parameter((n, segs))
        self.beta = cp.Parameter((n, segs))
        self.v = cp.Parameter(n, nonneg=True)
        self.w = cp.Parameter(n, nonneg=True)
        self.c = cp.Parameter(n, pos=True)
        self.r = cp.Parameter(n, pos=True)
        m_cols = cp.reshape(self.m, (n, 1), order="C") @ np.ones((1, segs))
        rate = -cp.rel_entr(self.b, self.b + self.c) / LN2
        cons = [
            self.e[:, None] >= self.alpha + cp.multiply(self.beta, m_cols),
            self.e >= 0,
            self.v + cp.multiply(self.w, self.m) <= rate,
            self.m >= 1,
            self.m <= self.r,
            cp.sum(self.b) <= 1.0,
        ]
        self.problem = cp.Problem(cp.Minimize(self.p @ self.e), cons)
        assert self.problem.is_dpp()

    def solve(self) -> bool:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # OPTIMAL_INACCURATE is accepted below
                self.problem.solve(solver=cp.CLARABEL)
        except (cp.error.SolverError, ValueError, ArithmeticError):
            return False
        return self.problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and \
            self.m.value is not None


@register_controller("tsfa")
class TSFA(Controller):
    """Two-stage federated allocation: Lyapunov control of bandwidth and kept ranks."""

    Params = TSFAParams
    needs_budget = True

    def __init__(self, params: TSFAParams | None = None) -> None:
        super().__init__(params)
        self._problems: dict[tuple[int, int], OnlineProblem] = {}

    # ------------------------------------------------------------------ helpers

    def weight_v(self, ctx: RoundContext) -> float:
        budget = ctx.latency_budget_s or 1.0
        return self.params.v * budget**2

    def objective(self, ctx: RoundContext, m: np.ndarray) -> tuple[float, float, np.ndarray]:
        """True discrete objective of integer ranks m: ``(J, tau*(m), b*(m))``."""
        tau, b = minmax_allocation(ctx.downlink_s + ctx.compute_s, bits_at(ctx, m), ctx.c_hz,
                                   ctx.bandwidth_hz)
        err = float(ctx.p @ ctx.eps[np.arange(len(m)), m])
        return self.weight_v(ctx) * err + ctx.queue * tau, tau, b

    def problem(self, n: int, big_r: int) -> OnlineProblem:
        key = (n, big_r)
        if key not in self._problems:
            self._problems[key] = OnlineProblem(n, big_r)
        return self._problems[key]

    def relaxed(self, ctx: RoundContext, tau: float, prob: OnlineProblem,
                s0: np.ndarray, s1: np.ndarray) -> np.ndarray | None:
        """Continuous ranks solving the convex problem at ``tau`` (None: infeasible)."""
        slack = tau - (ctx.downlink_s + ctx.compute_s)
        if np.any(slack <= 0):
            return None
        prob.v.value = np.maximum(s0, 0.0) / slack / ctx.bandwidth_hz
        prob.w.value = s1 / slack / ctx.bandwidth_hz
        return prob.m.value.copy() if prob.solve() else None

    # ------------------------------------------------------------------ the stage

    def online(self, ctx: RoundContext) -> Allocation:
        t0 = time.perf_counter()
        ranks = np.asarray(ctx.ranks, dtype=int)
        n = len(ranks)
        full = ranks.copy()
        if ctx.eps is None or ctx.bits is None or ctx.queue <= 0 or n == 0:
            # nothing to trade (Q = 0: latency is free this round) -> full rank
            _, b = minmax_allocation(ctx.downlink_s + ctx.compute_s, bits_at(ctx, full),
                                     ctx.c_hz, ctx.bandwidth_hz)
            return self._result(ctx, full, b, t0, solves=0, fallback=0)

        big_r = int(ranks.max())
        a = ctx.downlink_s + ctx.compute_s
        tau_hi, _ = minmax_allocation(a, ctx.bits[np.arange(n), full], ctx.c_hz, ctx.bandwidth_hz)
        ones = np.ones(n, dtype=int)
        tau_lo, _ = minmax_allocation(a, ctx.bits[np.arange(n), ones], ctx.c_hz,
                                      ctx.bandwidth_hz)
        prob = self.problem(n, big_r)
        prob.p.value = ctx.p
        alpha, beta = eps_lines(ctx.eps, ranks, big_r)
        prob.alpha.value, prob.beta.value = alpha, beta
        prob.c.value = np.maximum(ctx.c_hz / ctx.bandwidth_hz, 1e-12)
        prob.r.value = ranks.astype(float)
        s0, s1 = linear_payload(ctx.bits, ranks)

        best: tuple[float, np.ndarray] | None = None
        solves = 0
        cache: dict[float, float] = {}

        def evaluate(tau: float) -> float:
            nonlocal best, solves
            if tau in cache:
                return cache[tau]
            solves += 1
            m_cont = self.relaxed(ctx, tau, prob, s0, s1)
            if m_cont is None:
                cache[tau] = math.inf
                return math.inf
            m_int = np.clip(np.floor(m_cont + 1e-6).astype(int), 1, ranks)
            j, _, _ = self.objective(ctx, m_int)
            cache[tau] = j
            if best is None or j < best[0]:
                best = (j, m_int)
            return j

        lo = tau_lo * (1 + 1e-6)
        grid = np.linspace(lo, max(tau_hi, lo * (1 + 1e-6)), self.params.grid)
        vals = [evaluate(float(t)) for t in grid]
        i = int(np.argmin(vals))
        a_, b_ = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        x1, x2 = b_ - GOLDEN * (b_ - a_), a_ + GOLDEN * (b_ - a_)
        for _ in range(self.params.refine):  # golden section around the best grid point
            if evaluate(float(x1)) <= evaluate(float(x2)):
                b_, x2 = x2, x1
                x1 = b_ - GOLDEN * (b_ - a_)
            else:
                a_, x1 = x1, x2
                x2 = a_ + GOLDEN * (b_ - a_)

        # the endpoints of the discrete problem are always candidates
        for m in (full, ones):
            j, _, _ = self.objective(ctx, m)
            if best is None or j < best[0]:
                best = (j, m.copy())
        fallback = int(all(math.isinf(v) for v in cache.values()))
        m = best[1]
        if n <= self.params.polish_max_clients:
            m = self.polish(ctx, m, ranks)
        _, _, b = self.objective(ctx, m)
        return self._result(ctx, m, b, t0, solves, fallback)

    def polish(self, ctx: RoundContext, m: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """Single-rank moves on the true objective until none improves it."""
        m = m.copy()
        cur, _, _ = self.objective(ctx, m)
        improved = True
        while improved:
            improved = False
            for k in range(len(m)):
                for step in (1, -1):
                    if not 1 <= m[k] + step <= ranks[k]:
                        continue
                    m[k] += step
                    j, _, _ = self.objective(ctx, m)
                    if j < cur - 1e-12 * max(1.0, abs(cur)):
                        cur, improved = j, True
                    else:
                        m[k] -= step
        return m

    def _result(self, ctx: RoundContext, m: np.ndarray, b: np.ndarray, t0: float,
                solves: int, fallback: int) -> Allocation:
        planned = planned_latency_s(ctx, b, bits_at(ctx, m))
        keep = None if ctx.bits is None else m
        return Allocation(b, keep, planned, {
            "tsfa_solves": float(solves),
            "tsfa_fallback": float(fallback),
            "tsfa_keep_ratio": float(np.mean(m / np.asarray(ctx.ranks))),
            "solve_wall_s": time.perf_counter() - t0,
        })


# ---------------------------------------------------------------------- offline stage


@dataclass
class Candidate:
    """A structural choice (rank r, orthogonality weight) and what the pilot measured.

    Attributes
    ----------
    rank : int
    lambda_orth : float
    rank_gap : float
        Share of the pilot update's energy beyond its top r ranks (what rank r
        cannot hold), in [0, 1].
    covariance : float
        FedIT covariance ratio ``||C||_F / ||sum p B A||_F`` between the pilot clients
        at rank r (0 with one pilot client).
    trunc_err : ndarray, shape (r + 1,)
        Squared relative truncation error of SOFT keeping m ranks, m = 0..r.
    latency_s : ndarray, shape (r + 1,)
        Expected round latency with m ranks kept and min-max bandwidth, seconds.
    """

    rank: int
    lambda_orth: float
    rank_gap: float
    covariance: float
    trunc_err: np.ndarray
    latency_s: np.ndarray


def offline_choice(cands: list[Candidate], budget_s: float, w_rank: float, w_sparse: float,
                   w_cov: float) -> tuple[Candidate, list[dict[str, float]]]:
    """The candidate minimising the convergence-bound surrogate under the budget.

    For each candidate, ``m_bar`` is the largest kept rank whose expected latency fits
    ``budget_s``, and ``J = w_rank * rank_gap + w_sparse * trunc_err[m_bar] +
    w_cov * covariance``. Candidates with no feasible m are infeasible; if none is
    feasible, the one with the smallest expected latency at m = 1 is chosen.
    Returns the choice and one table row per candidate.
    """
    rows = []
    best, best_j = None, math.inf
    for c in cands:
        fits = [m for m in range(1, c.rank + 1) if c.latency_s[m] <= budget_s]
        m_bar = max(fits) if fits else 0
        j = (w_rank * c.rank_gap + w_sparse * float(c.trunc_err[m_bar]) + w_cov * c.covariance
             if fits else math.inf)
        rows.append({"rank": c.rank, "lambda_orth": c.lambda_orth, "rank_gap": c.rank_gap,
                     "covariance": c.covariance, "m_bar": m_bar,
                     "trunc_err_at_m_bar": float(c.trunc_err[m_bar]) if fits else math.nan,
                     "latency_full_s": float(c.latency_s[c.rank]),
                     "latency_m1_s": float(c.latency_s[1]), "surrogate": j})
        if j < best_j:
            best, best_j = c, j
    if best is None:
        best = min(cands, key=lambda c: float(c.latency_s[1]))
    for row, c in zip(rows, cands, strict=True):
        row["chosen"] = float(c is best)
    return best, rows
