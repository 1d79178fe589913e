"""Needed bandwidths for many deadlines at once, bracketed from one table per round.

The planner's deliverable bits ``D_k(b, tau) = sum_m w_km(tau) r(b, c_k g_km)`` (see
:mod:`wirelessfl.control.planning`) are linear in the node weights ``w(tau)``, and
the nodes of one time segment share their weight's time factor. So the segment
rates ``sum_{m in s} p_km r(b_j, c_k g_km)`` on a fixed grid of bandwidths ``b_j``
are computed once per round, and ``D_k(b_j, tau)`` for any batch of deadlines is one
batched product with the segment overlaps. D is increasing and concave in b and 0 at
b = 0, so for a payload S with ``D(b_{j-1}) < S <= D(b_j)`` the needed bandwidth lies
in ``(b_{j-1}, b_j]``: the root of the chord between the two points is an upper bound
on it (a concave function lies above its chords), and the roots of the neighbouring
chords, extended, are lower bounds (it lies below a chord outside the chord's
interval). :meth:`RateTable.bounds` returns both: the upper one is a bandwidth that
surely delivers S by tau, the lower one one that surely does not.

numpy, and torch only for its batched ``searchsorted``; exact at the grid points,
conservative in between (the relative gap is about the square of the grid's step,
1e-3 with the default 128 points over 7 decades). Also here: the per-deadline rank
knapsacks solved for a whole batch of tables at once.
"""

from __future__ import annotations

import warnings

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
        law = plan.law
        rate, _ = node_rates(self.b[None, None, 1:], plan.cg_hz[:, :, None],
                             slope=False)  # (n, M, J-1)
        # nodes of one time segment share their weight's time factor: sum them first
        start, end, of_node = law.segments()
        self.seg_start = np.maximum(start, self.a[:, None])  # no bits before the start
        self.seg_end = end
        member = (of_node[:, None] == np.arange(start.shape[1])[None, :]).astype(float)
        rate *= law.probs[:, :, None]
        seg = member.T @ rate  # (n, S, J-1)
        self.rates = np.concatenate([np.zeros(seg.shape[:2] + (1,)), seg], axis=2)  # (n,S,J)

    def deliverable(self, taus: np.ndarray) -> np.ndarray:
        """``D_k(b_j, tau_t)``, shape (n, T, J), bits."""
        taus = np.asarray(taus, dtype=float)
        overlap = np.minimum(taus[None, :, None], self.seg_end[:, None, :]) \
            - self.seg_start[:, None, :]  # (n, T, S), seconds
        return np.maximum(overlap, 0.0) @ self.rates  # increasing in b (grid >> rounding)

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
        """Lower and upper needed bandwidths of payloads s (n, T, R) on rows d (n, T, J).

        With ``D(b_lo) < S <= D(b_hi)`` on neighbouring grid points, the chord's root
        is the upper bound (a concave D lies above its chords), and the largest of
        ``b_lo`` and the roots of the neighbouring chords extended (a concave D lies
        below a chord outside its interval) is the lower bound.
        """
        n, t, big_j = d.shape
        j = first_at_least(d, s)  # first grid point that delivers S
        inside = j < big_j
        lo_i = np.clip(j - 1, 0, big_j - 2)
        # the grid points lo - 1 .. lo + 2 around each payload, gathered at once
        at = lo_i[None] + np.arange(-1, 3).reshape(4, 1, 1, 1)
        valid = (at >= 0) & (at < big_j)
        at = np.clip(at, 0, big_j - 1)
        base = (np.arange(n * t) * big_j).reshape(n, t, 1)
        dv = np.take(d.ravel(), base[None] + at)  # (4, n, T, R)
        bv = self.b[at]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = bv[:-1] + (s - dv[:-1]) * (bv[1:] - bv[:-1]) / (dv[1:] - dv[:-1])
        rising = (dv[1:] > dv[:-1]) & valid[:-1] & valid[1:] & np.isfinite(x)
        # the chord lo..lo+1 (row 1 of x): its root; the ones either side: lower bounds
        b_lo, b_hi = bv[1], bv[2]
        chord = np.where(rising[1], np.clip(x[1], b_lo, b_hi), b_hi)
        upper = np.where(inside, np.minimum(chord * (1 + 1e-12), b_hi), np.inf)
        beyond = np.where(rising[[0, 2]], x[[0, 2]], 0.0).max(axis=0)
        lower = np.minimum(np.maximum(b_lo, beyond) * (1 - 1e-9), upper)
        lower = np.where(inside, lower, np.inf)
        none = s <= 0
        return np.where(none, 0.0, lower), np.where(none, 0.0, upper)

    def narrow(self, bits: np.ndarray, lo: np.ndarray, hi: np.ndarray, iters: int = 12,
               rtol: float = 1e-7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shrink min-max deadline brackets with the table (for ``UplinkModel.minmax``).

        For each payload column c of ``bits`` (n, C), ``[lo_c, hi_c]`` holds the
        smallest deadline whose needs fit in the band. At a deadline the table
        tells "fits" (upper needs fit), "short" (lower needs do not) or neither.
        Two bisections per column, evaluated together: one on "fits" moves ``hi``
        down to the smallest deadline the table says fits, one on "short" moves
        ``lo`` up to the largest it says is short; a deadline where the table cannot
        tell bounds the other bisection's side. A side stops once its bracket is
        ``rtol * hi`` wide. Returns ``lo, hi`` and upper needs that fit at ``hi``
        (n, C), NaN where unknown.
        """
        lo, hi = lo.copy(), hi.copy()
        fit_need = np.full(bits.shape, np.nan)
        f_lo, s_hi = lo.copy(), hi.copy()  # not "fits" at f_lo; not "short" at s_hi
        ok = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
        for _ in range(iters):
            side_f = ok & (hi - f_lo > rtol * hi)
            side_s = ok & (s_hi - lo > rtol * hi)
            i_f, i_s = np.flatnonzero(side_f), np.flatnonzero(side_s)
            if not (i_f.size or i_s.size):
                break
            cols = np.concatenate([i_f, i_s])
            at = np.concatenate([0.5 * (f_lo[i_f] + hi[i_f]), 0.5 * (lo[i_s] + s_hi[i_s])])
            lower, upper = self.bounds_each(bits[:, cols], at)
            fits = upper.sum(axis=0) <= self.b_max
            short = lower.sum(axis=0) > self.b_max
            # each half holds a column at most once: apply them one after the other
            for part in (slice(0, i_f.size), slice(i_f.size, None)):
                c, t, fit_, short_ = cols[part], at[part], fits[part], short[part]
                new_hi = fit_ & (t < hi[c])
                fit_need[:, c[new_hi]] = upper[:, part][:, new_hi]
                hi[c] = np.where(new_hi, t, hi[c])
                lo[c] = np.where(short_, np.maximum(lo[c], t), lo[c])
                s_hi[c] = np.where(short_, s_hi[c], np.minimum(s_hi[c], t))
                f_lo[c] = np.where(fit_, f_lo[c], np.maximum(f_lo[c], t))
        return lo, hi, fit_need


def first_at_least(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the first index whose entry is ``>= value`` (the row's length if none).

    ``rows`` (..., J) non-decreasing along the last axis; ``values`` (..., R). One
    batched binary search over all rows (``torch.searchsorted``, which searches each
    row in its own sorted sequence; numpy has no batched form).
    """
    import torch

    lead, big_j = rows.shape[:-1], rows.shape[-1]
    flat = torch.from_numpy(np.ascontiguousarray(rows, dtype=float).reshape(-1, big_j))
    v = np.ascontiguousarray(values, dtype=float).reshape(flat.shape[0], -1)
    idx = torch.searchsorted(flat, torch.from_numpy(v), side="left").numpy()
    return idx.reshape(lead + v.shape[1:])


def choose_ranks_many(cost: np.ndarray, need: np.ndarray, budget: float,
                      iters: int = 14, multiplier: bool = False):
    """:func:`wirelessfl.control.knapsack.choose_ranks` for T need tables at once.

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
    lam : ndarray, shape (T,)
        Only with ``multiplier``: the multiplier of the band per table, for costs
        and needs as given (any lam >= 0 gives the Lagrangian lower bound).
    """
    t_n, n, _ = need.shape
    ok = np.isfinite(need) & np.isfinite(cost)[None]
    w = np.where(ok, need, np.inf)
    w *= 1.0 / max(budget, 1e-300)  # need as a share of the budget
    w0 = np.where(ok, w, 0.0)  # c + lam w0 is inf where not allowed, for any lam >= 0
    lightest = np.argmin(w, axis=2)
    base = (np.arange(t_n * n) * w.shape[2]).reshape(t_n, n)
    feasible = ok.any(axis=2).all(axis=1)
    feasible &= np.take(w0.ravel(), base + lightest).sum(1) <= 1 + 1e-12
    c_scale = max(float(np.max(np.abs(np.where(np.isfinite(cost), cost, 0.0)))), 1e-300)
    c = np.where(ok, cost[None] / c_scale, np.inf)

    def pick(lam: np.ndarray) -> np.ndarray:
        return np.argmin(c + lam[:, None, None] * w0, axis=2)

    def load(m: np.ndarray) -> np.ndarray:
        return np.take(w0.ravel(), base + m).sum(1)

    m = pick(np.zeros(t_n))
    over = load(m) > 1.0
    lam = np.zeros(t_n)
    if over.any():
        # the choice changes only at ties c_i - c_j = lam (w_j - w_i); with rows
        # ordered by need these lie between the smallest and largest tie of
        # neighbouring columns: bisection on log lam inside them (widened if not)
        with np.errstate(divide="ignore", invalid="ignore"):
            ties = (c[..., :-1] - c[..., 1:]) / (w[..., 1:] - w[..., :-1])
        ties = np.where(np.isfinite(ties) & (ties > 0), ties, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN tables
            lo = np.log10(np.nanmin(ties.reshape(t_n, -1), axis=1)) - 1.0
            hi = np.log10(np.nanmax(ties.reshape(t_n, -1), axis=1)) + 1.0
        lo = np.where(np.isfinite(lo), lo, -30.0)
        hi = np.where(np.isfinite(hi), hi, 30.0)
        lo = np.where(load(pick(10.0**lo)) <= 1.0, -30.0, lo)
        hi = np.where(load(pick(10.0**hi)) > 1.0, 30.0, hi)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            fit = load(pick(10.0**mid)) <= 1.0
            hi, lo = np.where(fit, mid, hi), np.where(fit, lo, mid)
        m = np.where(over[:, None], pick(10.0**hi), m)
        m = np.where((load(m) > 1.0)[:, None], lightest, m)
        lam = np.where(over, 10.0**hi, 0.0)
    # greedy fill of the leftover budget: every client's best upgrade (largest cost
    # saving per unit of need) that fits alone, taken in that order while their sum
    # fits; again until none fits
    for _ in range(n * c.shape[2]):
        at_c = np.take(c.ravel(), base + m)[..., None]
        at_w = np.take(w0.ravel(), base + m)[..., None]
        left = np.where(feasible, 1.0 - at_w[..., 0].sum(1), -np.inf)
        with np.errstate(invalid="ignore", divide="ignore"):  # inf - inf: not allowed
            dc, dw = c - at_c, w0 - at_w
            fits = (dc < 0) & (dw <= left[:, None, None] + 1e-15)
            ratio = np.where(fits, np.where(dw > 0, dc / dw, -np.inf), np.inf)
        best = np.argmin(ratio, axis=2)  # (T, n)
        r_best = np.take_along_axis(ratio, best[..., None], 2)[..., 0]
        if np.all(r_best == np.inf):  # no upgrade fits in any table
            break
        order = np.argsort(r_best, axis=1, kind="stable")
        step = np.maximum(np.take_along_axis(dw, best[..., None], 2)[..., 0], 0.0)
        used = np.cumsum(np.take_along_axis(step, order, 1), axis=1)
        take = (used <= left[:, None] + 1e-15) & (np.take_along_axis(r_best, order, 1)
                                                  < np.inf)
        take = np.cumprod(take, axis=1).astype(bool)  # the fitting prefix
        t_i, pos = np.nonzero(take)
        k = order[t_i, pos]
        m[t_i, k] = best[t_i, k]
    if multiplier:
        return m, feasible, lam * c_scale / max(budget, 1e-300)
    return m, feasible


def choose_ranks_exact_many(cost: np.ndarray, need: np.ndarray, budget: float,
                            max_frontier: int | None = 20_000,
                            cap: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The multiple-choice knapsack of :func:`choose_ranks_many`, solved exactly, for T
    need tables at once.

    A Pareto-frontier dynamic programme (clients added one at a time, pairs
    ``(total need, total cost)`` of partial choices kept only where no other pair has
    less need and less cost, and none over the budget), run on all T tables together
    with each table's frontier padded by ``inf`` to the longest. Falls back to
    :func:`choose_ranks_many` when a frontier would exceed ``max_frontier`` pairs
    (never when it is None: always exact). ``cap`` (T,): only choices whose total
    cost is at most ``cap`` count (a table whose least cost is above it reports
    infeasible), which prunes the frontier further.

    Parameters
    ----------
    cost : ndarray, shape (n, C)
    need : ndarray, shape (T, n, C)
    budget : float

    Returns
    -------
    m : ndarray of int, shape (T, n)
    feasible : ndarray of bool, shape (T,)
    """
    t_n, n, c = need.shape
    lim = budget * (1 + 1e-12)
    ok = np.isfinite(need) & np.isfinite(cost)[None] & (need <= lim)
    # bounds that prune the frontier without losing the optimum: a partial choice
    # whose cost plus the least cost of the clients still to come exceeds a known
    # feasible total (the Lagrangian choice), or whose need plus the least need to
    # come exceeds the budget, cannot be completed into a better choice
    heur, fits, lam = choose_ranks_many(cost, need, budget, multiplier=True)
    known = np.where(fits, cost[np.arange(n)[None, :], heur].sum(axis=1), np.inf)
    known = known * (1 + 1e-12) + 1e-300
    if cap is not None:
        known = np.minimum(known, cap)
    least_cost = np.where(ok, cost[None], np.inf).min(axis=2)  # (T, n)
    least_need = np.where(ok, need, np.inf).min(axis=2)
    after_cost = np.concatenate([np.cumsum(least_cost[:, ::-1], 1)[:, ::-1][:, 1:],
                                 np.zeros((t_n, 1))], axis=1)  # clients k+1.. (T, n)
    after_need = np.concatenate([np.cumsum(least_need[:, ::-1], 1)[:, ::-1][:, 1:],
                                 np.zeros((t_n, 1))], axis=1)
    # the Lagrangian bound of the clients still to come: for any lam >= 0 their cost
    # is at least sum_j min_m (cost + lam need) - lam (budget - need so far)
    with np.errstate(invalid="ignore"):
        dual = np.where(ok, cost[None] + lam[:, None, None] * need, np.inf).min(axis=2)
    after_dual = np.concatenate([np.cumsum(dual[:, ::-1], 1)[:, ::-1][:, 1:],
                                 np.zeros((t_n, 1))], axis=1)
    f_need, f_cost = np.zeros((t_n, 1)), np.zeros((t_n, 1))
    back: list[tuple[np.ndarray, np.ndarray]] = []  # per client: (parent, choice) (T, F)
    for k in range(n):
        nk = np.where(ok[:, k], need[:, k], np.inf)  # (T, C)
        ck = np.where(ok[:, k], cost[k][None, :], np.inf)
        cand_need = (f_need[:, :, None] + nk[:, None, :]).reshape(t_n, -1)  # (T, F * C)
        cand_cost = (f_cost[:, :, None] + ck[:, None, :]).reshape(t_n, -1)
        with np.errstate(invalid="ignore"):
            bad = (~(cand_need + after_need[:, k : k + 1] <= lim)
                   | ~(cand_cost + after_cost[:, k : k + 1] <= known[:, None])
                   | ~(cand_cost + after_dual[:, k : k + 1]
                       - lam[:, None] * (lim - cand_need) <= known[:, None]))
        cand_need[bad], cand_cost[bad] = np.inf, np.inf
        order = np.lexsort((cand_cost, cand_need), axis=-1)
        s_need = np.take_along_axis(cand_need, order, 1)
        s_cost = np.take_along_axis(cand_cost, order, 1)
        run_min = np.minimum.accumulate(s_cost, axis=1)
        prev = np.concatenate([np.full((t_n, 1), np.inf), run_min[:, :-1]], axis=1)
        with np.errstate(invalid="ignore"):
            bar = np.where(np.isfinite(prev), prev - 1e-15 * np.abs(prev), np.inf)
        keep = np.isfinite(s_cost) & (s_cost < bar)  # the running minimum falls here
        width = max(int(keep.sum(axis=1).max()), 1)
        if max_frontier is not None and width > max_frontier:
            return choose_ranks_many(cost, need, budget)
        pos = np.argsort(~keep, axis=1, kind="stable")[:, :width]  # kept pairs, in order
        kept = np.take_along_axis(keep, pos, 1)
        f_need = np.where(kept, np.take_along_axis(s_need, pos, 1), np.inf)
        f_cost = np.where(kept, np.take_along_axis(s_cost, pos, 1), np.inf)
        flat = np.take_along_axis(order, pos, 1)
        back.append((flat // c, flat % c))
    rows = np.arange(t_n)
    i = np.argmin(f_cost, axis=1)
    feasible = np.isfinite(f_cost[rows, i])
    m = np.zeros((t_n, n), dtype=int)
    for k in range(n - 1, -1, -1):
        parent, choice = back[k]
        m[:, k] = choice[rows, i]
        i = parent[rows, i]
    return m, feasible
