"""The per-deadline rank choice: one rank count per client under a shared bandwidth budget.

``min sum_k cost[k, m_k] s.t. sum_k need[k, m_k] <= B`` is a multiple-choice knapsack.
:func:`choose_ranks` answers it by Lagrangian relaxation and a greedy fill;
:mod:`wirelessfl.control.rate_table` has its batched version for many deadlines at
once and the exact Pareto-frontier programme (``choose_ranks_exact_many``). numpy only.
"""

from __future__ import annotations

import numpy as np


def choose_ranks(cost: np.ndarray, need: np.ndarray, budget: float
                 ) -> tuple[np.ndarray, float] | None:
    """``min sum_k cost[k, m_k] s.t. sum_k need[k, m_k] <= budget`` (one choice per row).

    Lagrangian relaxation of the budget: for a multiplier lam each row takes
    ``argmin_m cost + lam need``; the smallest lam whose choice fits is found by
    bisection on log lam, then the leftover budget buys the upgrades with the best
    cost saving per unit of need until none fits. Infinite entries are forbidden.

    Parameters
    ----------
    cost, need : ndarray, shape (n, C)
    budget : float

    Returns
    -------
    (m, total cost), or None when even the cheapest-need choice does not fit.
    """
    ok = np.isfinite(need) & np.isfinite(cost)
    if not np.all(ok.any(axis=1)):
        return None
    rows = np.arange(cost.shape[0])
    need_f = np.where(ok, need, np.inf)
    lightest = np.argmin(need_f, axis=1)
    if need_f[rows, lightest].sum() > budget * (1 + 1e-12):
        return None
    c_scale = max(float(np.max(np.abs(np.where(ok, cost, 0.0)))), 1e-300)
    n_scale = max(budget, 1e-300)
    c = np.where(ok, cost / c_scale, np.inf)
    w = np.where(ok, need / n_scale, np.inf)

    def pick(lam: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            score = np.where(ok, c + lam * w, np.inf)
        return np.argmin(score, axis=1)

    m = pick(0.0)
    if w[rows, m].sum() > 1.0:
        # the choice changes only where two options of a row tie, at
        # lam = (c_i - c_j) / (w_j - w_i) > 0: the smallest such lam whose choice fits
        # (the fitted load falls with lam), found by bisection over the sorted ties
        with np.errstate(divide="ignore", invalid="ignore"):
            ties = (c[:, :, None] - c[:, None, :]) / (w[:, None, :] - w[:, :, None])
        ties = np.unique(ties[np.isfinite(ties) & (ties > 0)])
        lams = np.concatenate([ties * (1 + 1e-12), [np.inf]])
        lo, hi = 0, len(lams) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if w[rows, pick(lams[mid])].sum() <= 1.0:
                hi = mid
            else:
                lo = mid + 1
        m = pick(lams[lo]) if np.isfinite(lams[lo]) else lightest
        if w[rows, m].sum() > 1.0:
            m = lightest
    # greedy fill of the leftover budget
    while True:
        left = 1.0 - w[rows, m].sum()
        dc = c - c[rows, m][:, None]
        dw = w - w[rows, m][:, None]
        fits = ok & (dc < 0) & (dw <= left + 1e-15)
        if not fits.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(fits, np.where(dw > 0, dc / dw, -np.inf), np.inf)
        k, j = np.unravel_index(np.argmin(ratio), ratio.shape)
        m[k] = j
    return m, float(cost[rows, m].sum())
