"""Needed bandwidths for many deadlines at once, bracketed from one table per round.

The planner's deliverable bits ``D_k(b, tau) = sum_m w_km(tau) r(b, c_k g_km)`` (see
:mod:`wirelessfl.control.planning`) are linear in the node weights ``w(tau)``, so the
node rates ``r(b_j, c_k g_km)`` on a fixed grid of bandwidths ``b_j`` are computed
once per round and ``D_k(b_j, tau)`` for any batch of deadlines is one batched matrix
product. D is increasing and concave in b and 0 at b = 0, so for a payload S with
``D(b_{j-1}) < S <= D(b_j)`` the needed bandwidth lies in ``(b_{j-1}, b_j]``, and the
root of the chord between the two points is an upper bound on it (a concave function
lies above its chords). :meth:`RateTable.bounds` returns both ends: the upper one is
a bandwidth that surely delivers S by tau, the lower one one that surely does not.

numpy only; exact at the grid points, conservative in between (the relative gap is
about the square of the grid's step, 1e-3 with the default 128 points over 7 decades).
"""

from __future__ import annotations

import numpy as np

from wirelessfl.control.planning import UplinkModel, node_rates


class RateTable:
    """Node rates of one round's clients on a bandwidth grid.

    Parameters
    ----------
    plan : UplinkModel
        The round's uplink model (n clients, M nodes).
    a_s : ndarray, shape (n,)
        Upload start after the round start, s.
    b_max_hz : float
        The largest bandwidth (the band), Hz: the grid's top.
    points : int
        Grid points above zero, log-spaced from ``span * b_max`` to ``b_max``.
    span : float
        The grid's smallest nonzero bandwidth as a share of ``b_max``.
    """

    def __init__(self, plan: UplinkModel, a_s: np.ndarray, b_max_hz: float,
                 points: int = 128, span: float = 1e-7) -> None:
        self.plan = plan
        self.a = np.asarray(a_s, dtype=float)
        self.b_max = float(b_max_hz)
        self.b = np.concatenate([[0.0], self.b_max * np.geomspace(span, 1.0, points)])
        rate, _ = node_rates(self.b[None, None, 1:], plan.cg_hz[:, :, None])  # (n, M, J-1)
        self.rates = np.concatenate([np.zeros(rate.shape[:2] + (1,)), rate], axis=2)

    def deliverable(self, taus: np.ndarray) -> np.ndarray:
        """``D_k(b_j, tau_t)``, shape (n, T, J), bits."""
        taus = np.asarray(taus, dtype=float)
        n, t = len(self.a), len(taus)
        w = self.plan.law.weights_s(np.broadcast_to(self.a[:, None], (n, t)),
                                    np.broadcast_to(taus[None, :], (n, t)))  # (n, T, M)
        return w @ self.rates  # increasing in b: the grid's steps dwarf the rounding

    def bounds(self, bits: np.ndarray, taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bracket of the needed bandwidth of each payload at each deadline.

        Parameters
        ----------
        bits : ndarray, shape (n, R)
            Payloads per client, bits (0: needs nothing).
        taus : ndarray, shape (T,)
            Deadlines after the round start, s.

        Returns
        -------
        lower, upper : ndarray, shape (n, T, R), Hz
            ``lower < need <= upper``; both ``inf`` where even ``b_max`` falls short.
        """
        s = np.asarray(bits, dtype=float)
        d = self.deliverable(taus)  # (n, T, J)
        return self._bracket(d, np.broadcast_to(s[:, None, :], d.shape[:2] + s.shape[1:]))

    def bounds_each(self, bits: np.ndarray, taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`bounds` of payload column c at deadline ``taus[c]``: bits (n, C),
        taus (C,) -> lower, upper of shape (n, C)."""
        d = self.deliverable(taus)  # (n, C, J)
        lower, upper = self._bracket(d, np.asarray(bits, dtype=float)[:, :, None])
        return lower[..., 0], upper[..., 0]

    def _bracket(self, d: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper needed bandwidths of payloads s (n, T, R) on rows d (n, T, J)."""
        big_j = d.shape[2]
        j = first_at_least(d, s)  # first grid point that delivers S
        inside = j < big_j
        hi_i = np.minimum(j, big_j - 1)
        lo_i = np.maximum(hi_i - 1, 0)
        d_hi = np.take_along_axis(d, hi_i, 2)
        d_lo = np.take_along_axis(d, lo_i, 2)
        b_hi, b_lo = self.b[hi_i], self.b[lo_i]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.clip((s - d_lo) / (d_hi - d_lo), 0.0, 1.0)
        chord = np.where(d_hi > d_lo, b_lo + frac * (b_hi - b_lo), b_hi)
        upper = np.where(inside, np.minimum(chord * (1 + 1e-12), b_hi), np.inf)
        lower = np.where(inside, b_lo, np.inf)
        none = s <= 0
        return np.where(none, 0.0, lower), np.where(none, 0.0, upper)

    def narrow(self, bits: np.ndarray, lo: np.ndarray, hi: np.ndarray, iters: int = 12
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shrink min-max deadline brackets with the table (for ``UplinkModel.minmax``).

        For each payload column c of ``bits`` (n, C), ``[lo_c, hi_c]`` holds the
        smallest deadline whose needs fit in the band. Bisection keeps it so: a
        midpoint whose upper needs fit becomes ``hi``, one whose lower needs do not
        becomes ``lo``; a column stops where the table cannot tell. Returns
        ``lo, hi`` and upper needs that fit at ``hi`` (n, C), NaN where unknown.
        """
        lo, hi = lo.copy(), hi.copy()
        fit_need = np.full(bits.shape, np.nan)
        live = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
        for _ in range(iters):
            if not live.any():
                break
            i = np.flatnonzero(live)
            mid = 0.5 * (lo[i] + hi[i])
            lower, upper = self.bounds_each(bits[:, i], mid)
            fits = upper.sum(axis=0) <= self.b_max
            short = lower.sum(axis=0) > self.b_max
            hi[i] = np.where(fits, mid, hi[i])
            lo[i] = np.where(short, mid, lo[i])
            fit_need[:, i] = np.where(fits, upper, fit_need[:, i])
            live[i] = fits | short
        return lo, hi, fit_need


def first_at_least(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the first index whose entry is ``>= value`` (the row's length if none).

    ``rows`` (..., J) non-decreasing along the last axis and >= 0; ``values``
    (..., R). One ``searchsorted`` over all rows: each row is scaled into
    ``[0, 1/2]`` and shifted by its own index, so the rows lie one after another.
    """
    lead = rows.shape[:-1]
    big_j = rows.shape[-1]
    flat = rows.reshape(-1, big_j)
    top = flat[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(top > 0, 0.5 / top, 0.0)
    offset = np.arange(len(flat), dtype=float)[:, None]
    keys = (flat * scale + offset).ravel()
    v = values.reshape(len(flat), -1)
    with np.errstate(invalid="ignore"):
        q = np.where(v <= flat[:, -1:], v * scale, 1.0) + offset  # above the top: past it
    idx = np.searchsorted(keys, q.ravel(), side="left").reshape(q.shape)
    return (idx - offset.astype(int) * big_j).clip(0, big_j).reshape(lead + v.shape[1:])


def choose_ranks_many(cost: np.ndarray, need: np.ndarray, budget: float,
                      iters: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wirelessfl.control.tsfa.choose_ranks` for T need tables at once.

    ``min sum_k cost[k, m_k] s.t. sum_k need[t, k, m_k] <= budget`` for every t:
    Lagrangian relaxation of the budget with the multiplier found by bisection on
    its logarithm (all t together), then a greedy fill of the leftover budget by the
    upgrades with the best cost saving per unit of need.

    Parameters
    ----------
    cost : ndarray, shape (n, C)
    need : ndarray, shape (T, n, C)
    budget : float

    Returns
    -------
    m : ndarray of int, shape (T, n)
    feasible : ndarray of bool, shape (T,)
        False where even the lightest choices do not fit (m is then meaningless).
    """
    t_n, n, _ = need.shape
    ok = np.isfinite(need) & np.isfinite(cost)[None]
    need_f = np.where(ok, need, np.inf)
    lightest = np.argmin(need_f, axis=2)
    feasible = ok.any(axis=2).all(axis=1)
    feasible &= np.take_along_axis(need_f, lightest[..., None], 2)[..., 0].sum(1) \
        <= budget * (1 + 1e-12)
    c_scale = max(float(np.max(np.abs(np.where(np.isfinite(cost), cost, 0.0)))), 1e-300)
    c = np.where(ok, cost[None] / c_scale, np.inf)
    w = np.where(ok, need / max(budget, 1e-300), np.inf)

    def pick(lam: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.argmin(np.where(ok, c + lam[:, None, None] * w, np.inf), axis=2)

    def load(m: np.ndarray) -> np.ndarray:
        return np.take_along_axis(w, m[..., None], 2)[..., 0].sum(1)

    m = pick(np.zeros(t_n))
    over = load(m) > 1.0
    if over.any():
        lo, hi = np.full(t_n, -30.0), np.full(t_n, 30.0)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            fit = load(pick(10.0**mid)) <= 1.0
            hi, lo = np.where(fit, mid, hi), np.where(fit, lo, mid)
        m = np.where(over[:, None], pick(10.0**hi), m)
        m = np.where((load(m) > 1.0)[:, None], lightest, m)
    rows = np.arange(t_n)
    for _ in range(n * c.shape[2]):  # each pass upgrades one client per table
        at_c = np.take_along_axis(c, m[..., None], 2)
        at_w = np.take_along_axis(w, m[..., None], 2)
        left = 1.0 - at_w[..., 0].sum(1)
        dc, dw = c - at_c, w - at_w
        fits = ok & (dc < 0) & (dw <= left[:, None, None] + 1e-15) & feasible[:, None, None]
        if not fits.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(fits, np.where(dw > 0, dc / dw, -np.inf), np.inf)
        flat = np.argmin(ratio.reshape(t_n, -1), axis=1)
        live = fits.reshape(t_n, -1)[rows, flat]
        k, j = np.unravel_index(flat, ratio.shape[1:])
        m[rows[live], k[live]] = j[live]
    return m, feasible
