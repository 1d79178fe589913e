"""The planner's uplink model: expected bits delivered over an upload window (numpy).

A client whose upload starts ``a_k`` seconds after the round start and must end by
``tau`` delivers, with bandwidth ``b``, in expectation over the channel's window law
(:class:`channels.law.WindowLaw`)

    D_k(b, tau) = sum_m w_km(a_k, tau) * b log2(1 + c_k g_km / b),

``w_km = prob_km |[a_k, tau] & [start_km, end_km)|`` (seconds). D is concave and
increasing in b (a positive sum of concave rates) and piecewise linear, increasing
in tau. The controllers plan with it: client k can send S bits by tau iff
``S <= D_k(b_k, tau)``. Its three uses:

* :meth:`UplinkModel.needed_bandwidth`: the smallest b with ``D_k(b, tau) >= S``
  (safeguarded Newton on the concave D, vectorised over clients and payloads);
* :meth:`UplinkModel.finish_s`: the tau with ``D_k(b, tau) = S`` (exact, piecewise
  linear in tau): the planned upload end;
* :meth:`UplinkModel.minmax`: the min-max latency allocation (bisection on tau).

With a law of one node that holds for ever (instantaneous CSI) D is
``(tau - a) b log2(1 + c g / b)``: the classic single-rate model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from channels.law import WindowLaw

LN2 = float(np.log(2.0))


def node_rates(b_hz: np.ndarray, cg_hz: np.ndarray, slope: bool = True
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """``b log2(1 + x / b)`` and its derivative in b, elementwise (b >= 0, x >= 0);
    the derivative is None unless ``slope``."""
    b_in = np.asarray(b_hz, dtype=float)
    b = np.minimum(np.maximum(b_in, 1e-300), 1e300)
    tiny = bool(np.any(b_in < 1e-200))  # rare: b ~ 0 can overflow x / b
    with np.errstate(over="ignore", divide="ignore"):
        u = cg_hz / b
        lg = np.log1p(u)  # natural log; both results are scaled to log2 at the end
        rate = np.minimum(lg, 1e300) * b if tiny else lg * b
        rate *= 1.0 / LN2
        if not slope:
            return (np.where(b_in > 0, rate, 0.0) if tiny else rate), None
        u += 1.0
        np.reciprocal(u, out=u)  # 1 / (1 + x / b)
        lg += u
        lg -= 1.0
        lg *= 1.0 / LN2  # d/db: log2(1 + x/b) - (1 - 1 / (1 + x/b)) / ln 2
    if tiny:
        rate = np.where(b_in > 0, rate, 0.0)
    return rate, lg


@dataclass
class UplinkModel:
    """What the planner believes about the n selected clients' uplinks this round.

    Attributes
    ----------
    c_hz : ndarray, shape (n,)
        Large-scale SNR-bandwidth products ``p beta_k / N0`` (no fading), Hz.
    law : WindowLaw
        The small-scale gain's law per client; times relative to the round start, s.
    paths : PathModel or None
        Sample paths of the gains, when the controller plans each upload's expected
        finish (``channel.csi.planning: expected_finish``); None: the mean rate.
    """

    c_hz: np.ndarray
    law: WindowLaw
    paths: Any = None

    @property
    def n(self) -> int:
        return len(self.c_hz)

    @property
    def cg_hz(self) -> np.ndarray:
        """``c_k g_km`` per node, shape (n, M)."""
        return self.c_hz[:, None] * self.law.gains

    def take(self, idx: np.ndarray) -> UplinkModel:
        return UplinkModel(self.c_hz[idx], self.law.take(idx),
                           None if self.paths is None else self.paths.take(idx))

    # ------------------------------------------------------------------ bits by tau

    def deliverable_bits(self, b_hz: np.ndarray, a_s: np.ndarray, tau_s) -> np.ndarray:
        """``D_k(b, tau)``; ``b`` of shape (n,) or (n, K), tau scalar or like b. Bits."""
        b = np.asarray(b_hz, dtype=float)
        a = np.asarray(a_s, dtype=float).reshape((-1,) + (1,) * (b.ndim - 1))
        tau = np.broadcast_to(np.asarray(tau_s, dtype=float), b.shape)
        w = self.law.weights_s(np.broadcast_to(a, b.shape), tau)
        cg = self.cg_hz if b.ndim == 1 else self.cg_hz[:, None, :]
        rate, _ = node_rates(b[..., None], cg, slope=False)
        return np.sum(w * rate, axis=-1)

    def needed_bandwidth(self, bits: np.ndarray, a_s: np.ndarray, tau_s,
                         b_max_hz: float, start_hz: np.ndarray | None = None) -> np.ndarray:
        """Smallest ``b <= b_max`` with ``D_k(b, tau) >= bits``; ``inf`` where none.

        Parameters
        ----------
        bits : ndarray, shape (n,) or (n, K)
            Payloads, bits (0 needs no bandwidth).
        a_s : ndarray, shape (n,)
            Upload start after the round start, seconds.
        tau_s : float or ndarray like bits
            Deadline after the round start, seconds.
        b_max_hz : float
            Largest bandwidth a client may get.
        start_hz : ndarray like bits, optional
            Where Newton starts (a nearby earlier answer); default: from below the
            secant through 0 and ``b_max``.

        Returns
        -------
        ndarray like bits, Hz; raised by a relative 1e-9 so that it never falls short.
        """
        s = np.asarray(bits, dtype=float)
        a = np.asarray(a_s, dtype=float).reshape((-1,) + (1,) * (s.ndim - 1))
        tau = np.broadcast_to(np.asarray(tau_s, dtype=float), s.shape)
        w = self.law.weights_s(np.broadcast_to(a, s.shape), tau)  # (..., M)
        cg = self.cg_hz if s.ndim == 1 else self.cg_hz[:, None, :]
        cg = np.broadcast_to(cg, w.shape)

        def d_and_slope(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rate, slope = node_rates(b[..., None], cg)
            return np.einsum("...m,...m->...", w, rate), np.einsum("...m,...m->...", w, slope)

        def d_only(b: np.ndarray) -> np.ndarray:
            return np.einsum("...m,...m->...", w, node_rates(b[..., None], cg, slope=False)[0])

        hi = np.full(s.shape, float(b_max_hz))
        ok = (d_only(hi) >= s) & (s > 0)
        lo = np.zeros(s.shape)
        warm = (np.full(s.shape, np.nan) if start_hz is None
                else np.asarray(start_hz, dtype=float))
        use_warm = ok & np.isfinite(warm) & (warm > 0)
        x = np.where(use_warm, np.minimum(warm, hi), hi)
        if not np.all(use_warm | ~ok):
            # D(b) >= b sum_m w_m log2(1 + x_m / b_max) on (0, b_max]: an upper start
            floor = np.einsum("...m,...m->...", w, np.log1p(cg / b_max_hz)) / LN2
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.where(ok & ~use_warm, np.minimum(s / floor, hi), x)
        for _ in range(100):
            d, slope = d_and_slope(x)
            above = d >= s
            hi = np.where(above, np.minimum(hi, x), hi)
            lo = np.where(above, lo, np.maximum(lo, x))
            with np.errstate(divide="ignore", invalid="ignore"):
                nxt = x - (d - s) / slope
            bad = ~np.isfinite(nxt) | (nxt <= lo) | (nxt >= hi)
            nxt = np.where(bad, np.where(lo > 0, np.sqrt(lo * hi), hi / 16), nxt)
            done = (hi - lo <= 1e-12 * hi) | (np.abs(d - s) <= 1e-12 * s) | ~ok
            x = np.where(done, x, nxt)
            if np.all(done):
                break
        near = x * (1 + 1e-9)
        d_near = d_only(near)
        out = np.where(d_near >= s, np.minimum(near, hi * (1 + 1e-9)), hi * (1 + 1e-9))
        out = np.where(ok, np.minimum(out, b_max_hz), np.inf)
        return np.where(s <= 0, 0.0, out)

    def finish_s(self, b_hz: np.ndarray, bits: np.ndarray, a_s: np.ndarray) -> np.ndarray:
        """Planned upload end ``tau`` with ``D_k(b_k, tau) = bits_k``, after the round start, s.

        ``b_hz`` and ``bits`` of shape (n,) or (n, C) (C allocations at once); the
        result has their shape. Exact: D is piecewise linear in tau between the
        segments' bounds. ``inf`` for a client with no bandwidth or no rate; ``a_k``
        for an empty payload.
        """
        b = np.asarray(b_hz, dtype=float)
        s = np.asarray(bits, dtype=float)
        flat = b.ndim == 1
        b, s = (b[:, None], s[:, None]) if flat else (b, s)
        a = np.asarray(a_s, dtype=float)
        n, c = b.shape
        law = self.law
        start, end, of_node = law.segments()  # (n, S), (n, S), (M,)
        knots = np.concatenate([start, end, a[:, None]], axis=1)
        knots = np.sort(np.maximum(knots, a[:, None]), axis=1)  # -inf -> a; inf stays
        rate, _ = node_rates(b[:, :, None], self.cg_hz[:, None, :], slope=False)  # (n, C, M)
        rate *= law.probs[:, None, :]
        member = (of_node[:, None] == np.arange(start.shape[1])[None, :]).astype(float)
        by_seg = rate @ member  # expected rate of each segment's nodes (n, C, S)
        # expected rate on [knot_j, knot_{j+1}): the segments that cover knot_j
        active = ((start[:, None, :] <= knots[:, :, None])
                  & (knots[:, :, None] < end[:, None, :])).astype(float)  # (n, P, S)
        seg_rate = by_seg @ np.swapaxes(active, 1, 2)  # (n, C, P)
        left, right = knots[:, :-1], knots[:, 1:]
        width = np.where(np.isfinite(right), right - np.where(np.isfinite(left), left, 0.0),
                         np.where(np.isfinite(left), np.inf, 0.0))[:, None, :]
        with np.errstate(invalid="ignore"):
            step = np.where(np.isfinite(width), seg_rate[:, :, :-1] * width,
                            np.where((seg_rate[:, :, :-1] > 0) & (width > 0), np.inf, 0.0))
        cum = np.concatenate([np.zeros((n, c, 1)), np.cumsum(step, axis=2)], axis=2)
        j = np.sum(cum < s[:, :, None], axis=2) - 1  # last knot before the payload is done
        j = np.clip(j, 0, knots.shape[1] - 1)
        at = j[:, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (np.take_along_axis(knots, j, axis=1)
                 + (s - np.take_along_axis(cum, at, 2)[..., 0])
                 / np.take_along_axis(seg_rate, at, 2)[..., 0])
        t = np.where(np.isfinite(t) & (b > 0), t, np.inf)
        out = np.where(s <= 0, a[:, None], t)
        return out[:, 0] if flat else out

    def _need_slope(self, need: np.ndarray, bits: np.ndarray, a: np.ndarray,
                    tau: np.ndarray) -> np.ndarray:
        """``d/dtau sum_k need_k(tau)`` at ``need`` (n, C) for deadlines ``tau`` (C,):
        ``-sum_k (dD_k/dtau) / (dD_k/db)``, shape (C,).

        ``dD/dtau`` is the expected rate at tau (the nodes whose segment holds tau,
        once the upload has started); clients with no payload contribute nothing.
        """
        rate, slope = node_rates(need[:, :, None], self.cg_hz[:, None, :])  # (n, C, M)
        w = self.law.weights_s(np.broadcast_to(a[:, None], need.shape),
                               np.broadcast_to(tau[None, :], need.shape))
        with np.errstate(invalid="ignore"):
            d_b = np.sum(w * slope, axis=2)
        d_tau = self._rate_at(rate, a, tau)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where((bits > 0) & (d_b > 0), d_tau / d_b, 0.0)
        return -np.sum(terms, axis=0)

    def _rate_at(self, rate: np.ndarray, a: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """``dD_k/dtau``: the expected rate at deadline ``tau`` (C,), from the node rates
        (n, C, M) of the bandwidths in question: the nodes whose segment holds tau,
        once the upload has started; shape (n, C)."""
        law = self.law
        t3 = tau[None, :, None]
        now = ((law.start_s[:, None, :] <= t3) & (t3 < law.end_s[:, None, :])
               & (a[:, None, None] < t3))
        return np.sum(np.where(now, law.probs[:, None, :] * rate, 0.0), axis=2)

    # ------------------------------------------------------------------ allocation

    def minmax(self, a_s: np.ndarray, bits: np.ndarray, bandwidth_hz: float,
               iters: int = 60, narrow=None, bracket=None):
        """Min-max latency allocation: ``(tau, b)`` with ``sum b <= B``.

        The smallest deadline whose needed bandwidths fit in B; leftover bandwidth is
        shared equally. ``(inf, equal shares)`` if no deadline within the upper bound
        works. Clients with no payload get no bandwidth.

        ``bits`` of shape (n,) gives ``(float, (n,))``; of shape (n, C), C payload
        vectors solved together, ``((C,), (n, C))``. ``narrow(bits, lo, hi) -> (lo,
        hi, fitting needs at hi)`` may shrink the deadline brackets first (e.g.
        ``RateTable.narrow``); ``bracket = (lo, hi, needs)`` gives them instead
        (each (C,); needs (n, C) that fit in the band by ``hi``, NaN where unknown).
        The answer depends on neither, only the time.
        """
        a = np.asarray(a_s, dtype=float)
        s = np.asarray(bits, dtype=float)
        flat = s.ndim == 1
        s = s[:, None] if flat else s
        n, c = s.shape
        if n == 0:
            return (0.0, np.zeros(0)) if flat else (np.zeros(c), np.zeros((0, c)))
        big_b = float(bandwidth_hz)
        live = s > 0
        count = np.maximum(live.sum(axis=0), 1)
        b_eq = np.where(live, big_b / count, 0.0)
        if bracket is not None and np.all(np.isfinite(bracket[2])):
            lo, hi, start = (np.asarray(x, dtype=float).copy() for x in bracket)
            tau, best = self._deadline(a, s, big_b, lo, hi, start, iters)
            return self._spread(a, s, big_b, live, count, hi, best, b_eq, flat)
        lo, hi = self.deadline_bracket(a, s, big_b)
        start = b_eq
        if narrow is not None:
            lo, hi_n, fit = narrow(s, lo, hi)
            known = np.all(np.isfinite(fit), axis=0)
            start = np.where(known, fit, b_eq)
            hi = np.where(known, hi_n, hi)
        tau, best = self._deadline(a, s, big_b, lo, hi, start, iters)
        return self._spread(a, s, big_b, live, count, hi, best, b_eq, flat)

    def deadline_bracket(self, a_s: np.ndarray, bits: np.ndarray, bandwidth_hz: float
                         ) -> tuple[np.ndarray, np.ndarray]:
        """``lo <= tau* <= hi`` of each payload column of ``bits`` (n, C): the latest end
        with the whole band each (no allocation ends sooner), and the latest end with
        the band shared equally among the clients with a payload (a feasible one)."""
        a = np.asarray(a_s, dtype=float)
        live = bits > 0
        b_eq = np.where(live, bandwidth_hz / np.maximum(live.sum(axis=0), 1), 0.0)
        hi = np.max(self.finish_s(b_eq, bits, a), axis=0)
        whole = self.finish_s(np.full(bits.shape, float(bandwidth_hz)), bits, a)
        return np.max(np.where(live, whole, a[:, None]), axis=0), hi

    def _spread(self, a: np.ndarray, s: np.ndarray, big_b: float, live: np.ndarray,
                count: np.ndarray, hi: np.ndarray, best: np.ndarray, b_eq: np.ndarray,
                flat: bool):
        """:meth:`minmax`'s answer from the needs ``best`` that fit by ``hi``: the unused
        band shared equally among the clients with a payload, and the planned end."""
        b = best + np.where(live, (big_b - best.sum(axis=0)) / count, 0.0)
        total = b.sum(axis=0)
        b = b * np.where(total > 0, np.minimum(1.0, big_b / np.where(total > 0, total, 1.0)),
                         1.0)
        tau = np.where(np.isfinite(hi), np.max(self.finish_s(b, s, a), axis=0), np.inf)
        b = np.where(np.isfinite(hi), b, b_eq)
        return (float(tau[0]), b[:, 0]) if flat else (tau, b)

    def _joint_newton(self, a: np.ndarray, s: np.ndarray, big_b: float, lo: np.ndarray,
                      hi: np.ndarray, b0: np.ndarray, iters: int = 8
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Newton's method on the min-max optimality system of each column, from
        bandwidths ``b0`` (n, C) that fit by ``hi`` (C,):

            D_k(b_k, tau) = S_k for every k with a payload,   sum_k b_k = B.

        The Jacobian is an arrow (``dD_k/db_k`` on the diagonal, ``dD_k/dtau`` in the
        last column, ones in the last row), so a step costs O(n): ``dtau = (sum_k b_k
        - B - sum_k F_k / D'_b) / sum_k (D'_tau / D'_b)``, then each ``db_k``. The
        answer is checked: the steps must have converged (the last one 1e-12 of tau),
        the needs at ``tau (1 + 2e-9)`` (exact, :meth:`needed_bandwidth`, rounded up by
        1e-9) must fit in the band and leave under 1e-6 of it unused, and tau must lie
        in ``(lo, hi]``. Returns that deadline, those needs,
        and which columns passed (the others are for the safeguarded search).
        """
        law = self.law
        live = s > 0
        b = np.where(live, b0, 0.0)
        tau = hi.copy()
        cg = self.cg_hz[:, None, :]
        converged = np.zeros(len(tau), dtype=bool)  # the last step was negligible
        failed = np.zeros(len(tau), dtype=bool)  # a step was not finite: left alone
        for _ in range(iters):
            rate, slope = node_rates(b[:, :, None], cg)  # (n, C, M)
            w = law.weights_s(np.broadcast_to(a[:, None], b.shape),
                              np.broadcast_to(tau[None, :], b.shape))
            d = np.einsum("ncm,ncm->nc", w, rate)
            d_b = np.einsum("ncm,ncm->nc", w, slope)
            d_t = self._rate_at(rate, a, tau)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(live, (d - s) / d_b, 0.0)
                q = np.where(live, d_t / d_b, 0.0)
                d_tau = (b.sum(axis=0) - big_b - r.sum(axis=0)) / q.sum(axis=0)
                d_b_k = np.where(live, -r - q * d_tau[None, :], 0.0)
            failed |= ~(np.isfinite(d_tau) & np.all(np.isfinite(d_b_k), axis=0))
            d_tau = np.where(failed, 0.0, d_tau)
            d_b_k = np.where(failed[None, :], 0.0, d_b_k)
            b = np.maximum(b + d_b_k, np.where(live, 1e-3 * b, 0.0))  # stays positive
            tau = tau + d_tau
            converged = (np.abs(d_tau) <= 1e-12 * np.abs(tau)) & ~failed
            if np.all(converged | failed):
                break
        # a hair past the root: the needs are rounded up by 1e-9 (never short)
        tau_v = tau * (1 + 2e-9)
        with np.errstate(invalid="ignore"):
            need = self.needed_bandwidth(s, a, np.broadcast_to(tau_v, s.shape), big_b,
                                         start_hz=np.where(live, b, np.nan))
            total = need.sum(axis=0)
            good = (converged & np.all(np.isfinite(need), axis=0) & (total <= big_b)
                    & (total >= big_b * (1 - 1e-6)) & (lo < tau_v) & (tau_v <= hi))
        return tau_v, need, good

    def _deadline(self, a: np.ndarray, s: np.ndarray, big_b: float, lo: np.ndarray,
                  hi: np.ndarray, b_eq: np.ndarray, iters: int
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The smallest tau per column with ``sum_k need_k(tau) <= B``, and those needs.

        h(tau) = sum_k need_k(tau) - B falls with tau. Newton steps on tau (the slope
        from the implicit function), each warm-starting the needed bandwidths from
        the last ones, kept inside the bracket [lo, hi] (h(lo) > 0 >= h(hi)); outside
        it, Illinois steps (regula falsi that halves a stuck end's value), or
        bisection while an end's value is unknown. Columns with no finite ``hi`` are
        left at ``b_eq``, which must be a feasible allocation at ``hi`` (it also seeds
        the Newton steps on the needed bandwidths). A column is done when its bracket
        is 1e-10 wide or its feasible end leaves less than 1e-9 of the band unused.
        """
        lo, hi = lo.copy(), hi.copy()
        best = b_eq.copy()
        warm = np.where(np.isfinite(b_eq), b_eq, np.nan)
        c = s.shape[1]
        h_lo, h_hi = np.full(c, np.inf), np.full(c, -big_b)
        side = np.zeros(c)
        guess = np.full(c, np.nan)
        active = np.isfinite(hi)
        if np.all(np.isfinite(b_eq[:, active])):  # first the joint Newton from the start
            tau_n, need_n, good = self._joint_newton(a, s, big_b, lo, hi, b_eq)
            good &= active
            hi[good], best[:, good] = tau_n[good], need_n[:, good]
            active &= ~good
        for _ in range(iters):
            # done: a bracket of 1e-10, or a feasible end that leaves under 1e-9 of the
            # band unused (the needs themselves are rounded up by 1e-9)
            active &= (hi - lo > 1e-10 * hi) & (h_hi < -1e-9 * big_b)
            if not active.any():
                break
            i = np.flatnonzero(active)
            lo_i, hi_i, g = lo[i], hi[i], guess[i]
            with np.errstate(divide="ignore", invalid="ignore"):
                falsi = hi_i - h_hi[i] * (hi_i - lo_i) / (h_hi[i] - h_lo[i])
            falsi = np.where(np.isfinite(h_lo[i]) & (h_lo[i] > h_hi[i])
                             & (lo_i < falsi) & (falsi < hi_i), falsi, 0.5 * (lo_i + hi_i))
            mid = np.where((lo_i < g) & (g < hi_i), g, falsi)
            s_i = s[:, i]
            need = self.needed_bandwidth(s_i, a, np.broadcast_to(mid, s_i.shape), big_b,
                                         start_hz=warm[:, i])
            h = np.sum(need, axis=0) - big_b
            finite = np.all(np.isfinite(need), axis=0)
            warm[:, i] = np.where(finite, need, warm[:, i])
            slope = self._need_slope(np.where(finite, need, 0.0), s_i, a, mid)
            with np.errstate(divide="ignore", invalid="ignore"):
                nxt = mid - h / slope
            # Newton from below stops short of the root: aim a hair past it
            nxt = np.where(h > 0, nxt + 2e-11 * mid, nxt)
            guess[i] = np.where(finite & (slope < 0), nxt, np.nan)
            ok = h <= 0
            hi[i] = np.where(ok, mid, hi_i)
            lo[i] = np.where(ok, lo_i, mid)
            best[:, i] = np.where(ok, need, best[:, i])
            h_lo[i] = np.where(ok, np.where(side[i] == 1, h_lo[i] * 0.5, h_lo[i]), h)
            h_hi[i] = np.where(ok, h, np.where(side[i] == -1, h_hi[i] * 0.5, h_hi[i]))
            side[i] = np.where(ok, 1, -1)
        return hi, best


def instantaneous(c_hz: np.ndarray, gain: np.ndarray) -> UplinkModel:
    """The classic model: the round-start gain holds for the whole upload."""
    return UplinkModel(np.asarray(c_hz, dtype=float), WindowLaw.known(np.asarray(gain)))


def stationary(cell, links: np.ndarray) -> UplinkModel:
    """The planner's model of ``links`` with no CSI: the channel's stationary law.

    Ergodic rates (the statistics, not a realisation), as a planner sees the cell
    before any round: for latency bounds and TSFA's offline comparison.
    """
    links = np.asarray(links)
    return UplinkModel(cell.uplink_c_hz(links), cell.channel.stationary_law(len(links), 0.0))
