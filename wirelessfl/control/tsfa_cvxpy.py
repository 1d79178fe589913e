"""TSFA's cvxpy reference: the per-deadline problem as one convex program (DPP).

The continuous relaxation in the kept ranks m: the error profile as the maximum of
its segment lines (:func:`eps_lines`, exact for convex profiles only) and the
payload as a line above the table (:func:`linear_payload`); the bandwidth a client
needs is expressed with ``-rel_entr`` terms, so the problem is built once and
re-solved with new parameter values (CLARABEL).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

LN2 = math.log(2.0)


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
    """The cvxpy reference of the per-tau problem, built once for n clients, R ranks, M nodes.

    Scaled for the solver: bandwidth as a share ``x_k = b_k / B``; the latency
    constraint ``S0_k + s1_k m_k <= sum_j w_kj b_k log2(1 + c_k g_kj / b_k)`` reads, divided
    by B, ``v_k + u_k m_k <= -sum_j rel_entr(w_kj x_k, w_kj x_k + y_kj) / ln 2`` with
    ``y_kj = w_kj c_k g_kj / B`` (``w rel_entr(x, x + z) = rel_entr(w x, w x + w z)``, which
    keeps the problem DPP: parameters multiply only parameter-free expressions).
    """

    n: int
    big_r: int
    nodes: int

    def __post_init__(self) -> None:
        import cvxpy as cp

        self.cp = cp
        n, segs, q = self.n, max(self.big_r - 1, 1), self.nodes
        self.m = cp.Variable(n)
        self.x = cp.Variable(n, nonneg=True)
        self.e = cp.Variable(n)
        self.p = cp.Parameter(n, nonneg=True)
        self.alpha = cp.Parameter((n, segs))
        self.beta = cp.Parameter((n, segs))
        self.v = cp.Parameter(n, nonneg=True)
        self.u = cp.Parameter(n, nonneg=True)
        self.w = cp.Parameter((n, q), nonneg=True)
        self.y = cp.Parameter((n, q), nonneg=True)
        self.r = cp.Parameter(n, pos=True)
        m_cols = cp.reshape(self.m, (n, 1), order="C") @ np.ones((1, segs))
        wx = cp.multiply(self.w, cp.reshape(self.x, (n, 1), order="C") @ np.ones((1, q)))
        rate = -cp.sum(cp.rel_entr(wx, wx + self.y), axis=1) / LN2
        cons = [
            self.e[:, None] >= self.alpha + cp.multiply(self.beta, m_cols),
            self.e >= 0,
            self.v + cp.multiply(self.u, self.m) <= rate,
            self.m >= 1,
            self.m <= self.r,
            cp.sum(self.x) <= 1.0,
        ]
        self.problem = cp.Problem(cp.Minimize(self.p @ self.e), cons)
        assert self.problem.is_dpp()

    def solve(self) -> bool:
        cp = self.cp
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # OPTIMAL_INACCURATE is accepted below
                self.problem.solve(solver=cp.CLARABEL)
        except (cp.error.SolverError, ValueError, ArithmeticError):
            return False
        return self.problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and \
            self.m.value is not None
