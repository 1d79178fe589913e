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

import math
from dataclasses import dataclass

import numpy as np

from channels.law import WindowLaw

LN2 = float(np.log(2.0))


def node_rates(b_hz: np.ndarray, cg_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``b log2(1 + x / b)`` and its derivative in b, elementwise (b >= 0, x >= 0)."""
    b_in = np.asarray(b_hz, dtype=float)
    b = np.minimum(np.maximum(b_in, 1e-300), 1e300)
    with np.errstate(over="ignore", divide="ignore"):
        u = cg_hz / b
        lg = np.log1p(u) / LN2
        rate = np.where(b_in > 0, b * np.minimum(lg, 1e300), 0.0)
        return rate, lg - (1.0 - 1.0 / (1.0 + u)) / LN2


@dataclass
class UplinkModel:
    """What the planner believes about the n selected clients' uplinks this round.

    Attributes
    ----------
    c_hz : ndarray, shape (n,)
        Large-scale SNR-bandwidth products ``p beta_k / N0`` (no fading), Hz.
    law : WindowLaw
        The small-scale gain's law per client; times relative to the round start, s.
    """

    c_hz: np.ndarray
    law: WindowLaw

    @property
    def n(self) -> int:
        return len(self.c_hz)

    @property
    def cg_hz(self) -> np.ndarray:
        """``c_k g_km`` per node, shape (n, M)."""
        return self.c_hz[:, None] * self.law.gains

    def take(self, idx: np.ndarray) -> UplinkModel:
        return UplinkModel(self.c_hz[idx], self.law.take(idx))

    # ------------------------------------------------------------------ bits by tau

    def deliverable_bits(self, b_hz: np.ndarray, a_s: np.ndarray, tau_s) -> np.ndarray:
        """``D_k(b, tau)``; ``b`` of shape (n,) or (n, K), tau scalar or like b. Bits."""
        b = np.asarray(b_hz, dtype=float)
        a = np.asarray(a_s, dtype=float).reshape((-1,) + (1,) * (b.ndim - 1))
        tau = np.broadcast_to(np.asarray(tau_s, dtype=float), b.shape)
        w = self.law.weights_s(np.broadcast_to(a, b.shape), tau)
        cg = self.cg_hz if b.ndim == 1 else self.cg_hz[:, None, :]
        rate, _ = node_rates(b[..., None], cg)
        return np.sum(w * rate, axis=-1)

    def needed_bandwidth(self, bits: np.ndarray, a_s: np.ndarray, tau_s,
                         b_max_hz: float) -> np.ndarray:
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
            return np.sum(w * rate, axis=-1), np.sum(w * slope, axis=-1)

        hi = np.full(s.shape, float(b_max_hz))
        d_hi, _ = d_and_slope(hi)
        ok = (d_hi >= s) & (s > 0)
        lo = np.zeros(s.shape)
        # D(b) >= b * sum_m w_m log2(1 + x_m / b_max) on (0, b_max]: an upper start point
        floor = np.sum(w * np.log1p(cg / b_max_hz), axis=-1) / LN2
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(ok, np.minimum(s / floor, hi), hi)
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
        d_near, _ = d_and_slope(near)
        out = np.where(d_near >= s, np.minimum(near, hi * (1 + 1e-9)), hi * (1 + 1e-9))
        out = np.where(ok, np.minimum(out, b_max_hz), np.inf)
        return np.where(s <= 0, 0.0, out)

    def finish_s(self, b_hz: np.ndarray, bits: np.ndarray, a_s: np.ndarray) -> np.ndarray:
        """Planned upload end ``tau`` with ``D_k(b_k, tau) = bits_k``, after the round start, s.

        Exact: D is piecewise linear in tau between the segments' bounds. ``inf`` for a
        client with no bandwidth or no rate; ``a_k`` for an empty payload.
        """
        b = np.asarray(b_hz, dtype=float)
        s = np.asarray(bits, dtype=float)
        a = np.asarray(a_s, dtype=float)
        n = len(b)
        law = self.law
        knots = np.concatenate([law.start_s, law.end_s, a[:, None]], axis=1)
        knots = np.sort(np.maximum(knots, a[:, None]), axis=1)  # -inf -> a; inf stays
        rate, _ = node_rates(b[:, None], self.cg_hz)  # (n, M)
        # expected rate on [knot_j, knot_{j+1}): nodes whose segment covers knot_j
        active = (law.start_s[:, None, :] <= knots[:, :, None]) & \
            (knots[:, :, None] < law.end_s[:, None, :])
        seg_rate = np.sum(active * (law.probs * rate)[:, None, :], axis=-1)  # (n, P)
        left, right = knots[:, :-1], knots[:, 1:]
        width = np.where(np.isfinite(right), right - np.where(np.isfinite(left), left, 0.0),
                         np.where(np.isfinite(left), np.inf, 0.0))
        with np.errstate(invalid="ignore"):
            step = np.where(np.isfinite(width), seg_rate[:, :-1] * width,
                            np.where((seg_rate[:, :-1] > 0) & (width > 0), np.inf, 0.0))
        cum = np.concatenate([np.zeros((n, 1)), np.cumsum(step, axis=1)], axis=1)
        j = np.sum(cum < s[:, None], axis=1) - 1  # last knot before the payload is done
        j = np.clip(j, 0, knots.shape[1] - 1)
        rows = np.arange(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = knots[rows, j] + (s - cum[rows, j]) / seg_rate[rows, j]
        t = np.where(np.isfinite(t) & (b > 0), t, np.inf)
        return np.where(s <= 0, a, t)

    # ------------------------------------------------------------------ allocation

    def minmax(self, a_s: np.ndarray, bits: np.ndarray, bandwidth_hz: float,
               iters: int = 60) -> tuple[float, np.ndarray]:
        """Min-max latency allocation: ``(tau, b)`` with ``sum b <= B``.

        Bisection on tau for the smallest deadline whose needed bandwidths fit in B;
        leftover bandwidth is shared equally. ``(inf, equal shares)`` if no deadline
        within the upper bound works. Clients with no payload get no bandwidth.
        """
        a = np.asarray(a_s, dtype=float)
        s = np.asarray(bits, dtype=float)
        n = len(a)
        if n == 0:
            return 0.0, np.zeros(0)
        big_b = float(bandwidth_hz)
        live = s > 0
        b_eq = np.where(live, big_b / max(live.sum(), 1), 0.0)
        hi = float(np.max(self.finish_s(b_eq, s, a)))
        if not np.isfinite(hi):
            return float("inf"), b_eq
        lo = float(np.max(np.where(live, self.finish_s(np.full(n, big_b), s, a), a)))
        best = b_eq
        # h(tau) = sum_k need_k(tau) - B falls with tau: Illinois steps (regula falsi
        # that halves a stuck end's value), bisection while an end is infinite
        h_lo, h_hi = math.inf, -big_b
        side = 0
        for _ in range(iters):
            if hi - lo <= 1e-10 * hi:
                break
            if np.isfinite(h_lo) and h_lo > h_hi:
                mid = hi - h_hi * (hi - lo) / (h_hi - h_lo)
                if not lo < mid < hi:
                    mid = 0.5 * (lo + hi)
            else:
                mid = 0.5 * (lo + hi)
            need = self.needed_bandwidth(s, a, mid, big_b)
            h = float(np.sum(need)) - big_b
            if h <= 0:
                hi, h_hi, best = mid, h, need
                if side == 1:
                    h_lo *= 0.5
                side = 1
            else:
                lo, h_lo = mid, h
                if side == -1:
                    h_hi *= 0.5
                side = -1
        b = best + np.where(live, (big_b - best.sum()) / max(live.sum(), 1), 0.0)
        b *= min(1.0, big_b / b.sum()) if b.sum() > 0 else 1.0
        return float(np.max(self.finish_s(b, s, a))), b


def instantaneous(c_hz: np.ndarray, gain: np.ndarray) -> UplinkModel:
    """The classic model: the round-start gain holds for the whole upload."""
    return UplinkModel(np.asarray(c_hz, dtype=float), WindowLaw.known(np.asarray(gain)))
