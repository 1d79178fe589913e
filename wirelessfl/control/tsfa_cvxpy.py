"""TSFA's cvxpy reference: the per-deadline rank choice as a mixed-integer program.

At a fixed deadline tau the bandwidth client k needs for m ranks,
``beta_k(m, tau)``, is a constant, so the rank choice is a multiple-choice knapsack
with a one-hot choice per client:

    min  sum_{k,m} cost[k, m] x[k, m]
    s.t. sum_m x[k, m] = 1 for every k,   sum_{k,m} beta_k(m, tau) x[k, m] <= B,
         x[k, m] in {0, 1},  x[k, m] = 0 where m is not allowed or cannot fit,

built once per problem size with cvxpy parameters and solved exactly by HiGHS
(branch and cut). No convexity of the error profile is assumed. Scaled for the
solver: costs by their largest finite value, needs by B.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class RankMILP:
    """The per-deadline rank choice for n clients and C choices (m = 0..R) as a MILP."""

    n: int
    choices: int

    def __post_init__(self) -> None:
        import cvxpy as cp

        self.cp = cp
        shape = (self.n, self.choices)
        self.x = cp.Variable(shape, boolean=True)
        self.cost = cp.Parameter(shape)
        self.need = cp.Parameter(shape, nonneg=True)
        self.allowed = cp.Parameter(shape, nonneg=True)
        cons = [cp.sum(self.x, axis=1) == 1, self.x <= self.allowed,
                cp.sum(cp.multiply(self.need, self.x)) <= 1.0]
        self.problem = cp.Problem(cp.Minimize(cp.sum(cp.multiply(self.cost, self.x))), cons)

    def solve(self, cost: np.ndarray, need: np.ndarray, budget: float) -> np.ndarray | None:
        """The least-cost choice per client (shape (n,)) whose needs fit in ``budget``;
        None when none fits or the solver fails. ``inf`` marks a forbidden choice."""
        cp = self.cp
        ok = np.isfinite(cost) & np.isfinite(need) & (need <= budget * (1 + 1e-12))
        if not np.all(ok.any(axis=1)):
            return None
        scale = max(float(np.max(np.abs(cost[ok]))), 1e-300)
        self.cost.value = np.where(ok, cost / scale, 0.0)
        self.need.value = np.where(ok, need / budget, 0.0)
        self.allowed.value = ok.astype(float)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.problem.solve(solver=cp.HIGHS, mip_rel_gap=1e-12, mip_abs_gap=0.0)
        except (cp.error.SolverError, ValueError, ArithmeticError):
            return None
        if self.problem.status != cp.OPTIMAL or self.x.value is None:
            return None
        return np.argmax(self.x.value, axis=1).astype(np.int64)
