"""An independent exact solver of one round's allocation problem: the hindsight oracle.

It solves, by exhaustive enumeration of the rank vectors,

    min_{m, b}  sum_k cost[k, m_k] + Q * tau(m, b)
    s.t.  bits[k, m_k] <= sum_j w_kj(a_k, tau) b_k log2(1 + x_kj / b_k),   sum_k b_k <= B,

where the nodes ``(x_kj, prob_kj, start_kj, end_kj)`` describe each client's uplink
over time (a planner's window law, or in hindsight the realised gains block by
block), ``w_kj = prob_kj |[a_k, tau] & [start_kj, end_kj)|`` and ``tau(m, b)`` the round's
latency. It shares no code with the controllers (:mod:`wirelessfl.control.planning`,
:mod:`wirelessfl.control.tsfa`): its own rate formula, bisection where they use
Newton steps, enumeration where they use relaxations. Tests and the regret harness
use it as the reference; it is exponential in the number of clients.

Exactness. For a rank vector m let ``tau*(m)`` be its min-max latency (the smallest tau
whose needed bandwidths fit in B). The optimum is ``min_m cost(m) + Q tau*(m)``. All
vectors are first bracketed on a tau grid (feasibility of every vector at every grid
point from one table of needed bandwidths per point), which bounds each objective
within one grid step; only vectors whose lower bound is below the best upper bound
are then solved exactly (bisection on tau to a relative 1e-12).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

_LOG2 = math.log(2.0)


def _bits(b: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_j w_j b log2(1 + x_j / b)`` over the last axis; b broadcast on it."""
    bb = np.maximum(b, 1e-300)[..., None]
    return np.sum(w * bb * np.log1p(x / bb), axis=-1) / _LOG2


def _weights(prob, start, end, a, tau) -> np.ndarray:
    lo = np.maximum(start, a[..., None])
    hi = np.minimum(end, np.asarray(tau)[..., None])
    return prob * np.clip(hi - lo, 0.0, None)


def _needed(x, w, bits, big_b, iters=200) -> np.ndarray:
    """Smallest b in (0, B] delivering ``bits`` (bisection on log b); inf if none."""
    hi = np.full(bits.shape, float(big_b))
    ok = _bits(hi, x, w) >= bits
    lo = np.full(bits.shape, big_b * 1e-15)
    for _ in range(iters):
        mid = np.sqrt(lo * hi)
        enough = _bits(mid, x, w) >= bits
        hi = np.where(enough, mid, hi)
        lo = np.where(enough, lo, mid)
        if np.all(hi <= lo * (1 + 1e-13)):
            break
    return np.where(bits <= 0, 0.0, np.where(ok, hi, np.inf))


class HindsightProblem:
    """One round's problem, as data.

    Parameters
    ----------
    start_s : ndarray, shape (n,)
        Upload start of each client after the round start, seconds.
    bits : ndarray, shape (n, C)
        Payload of each choice (column) per client, bits; 0 means "not sent".
    cost : ndarray, shape (n, C)
        Cost of each choice; ``inf`` forbids it.
    x_hz, prob, seg_start_s, seg_end_s : ndarray, shape (n, M)
        Nodes of each client's uplink: SNR-bandwidth products ``c g`` (Hz), their
        probabilities and time segments (seconds after the round start).
    bandwidth_hz : float
    queue : float
        The weight Q of the latency.
    """

    def __init__(self, start_s, bits, cost, x_hz, prob, seg_start_s, seg_end_s,
                 bandwidth_hz, queue) -> None:
        self.a = np.asarray(start_s, dtype=float)
        self.bits = np.asarray(bits, dtype=float)
        self.cost = np.asarray(cost, dtype=float)
        self.x = np.asarray(x_hz, dtype=float)
        self.prob = np.asarray(prob, dtype=float)
        self.s0 = np.asarray(seg_start_s, dtype=float)
        self.s1 = np.asarray(seg_end_s, dtype=float)
        self.big_b = float(bandwidth_hz)
        self.queue = float(queue)

    def need_table(self, tau: float) -> np.ndarray:
        """Needed bandwidth of every (client, choice) at deadline tau, shape (n, C)."""
        n, c = self.bits.shape
        w = _weights(self.prob, self.s0, self.s1, self.a, np.full(n, tau))
        return _needed(np.repeat(self.x[:, None, :], c, axis=1),
                       np.repeat(w[:, None, :], c, axis=1), self.bits, self.big_b)

    def min_latency(self, m: np.ndarray, hi: float) -> np.ndarray:
        """Exact min-max latency of each rank vector, shape (V,), by bisection on tau.

        Parameters
        ----------
        m : ndarray of int, shape (V, n)
        hi : float
            A latency at which every vector is feasible.
        """
        v, n = m.shape
        rows = np.arange(n)[None, :]
        payload = self.bits[rows, m]  # (V, n)
        sends = payload > 0
        lo_v = np.full(v, float(np.min(self.a)))
        hi_v = np.full(v, hi)
        x = np.broadcast_to(self.x[None], (v, n, self.x.shape[1]))
        for _ in range(200):
            mid = 0.5 * (lo_v + hi_v)
            w = _weights(self.prob[None], self.s0[None], self.s1[None],
                         np.broadcast_to(self.a, (v, n)), np.repeat(mid[:, None], n, axis=1))
            need = _needed(x, w, payload, self.big_b, iters=120)
            fits = np.sum(need, axis=1) <= self.big_b
            hi_v = np.where(fits, mid, hi_v)
            lo_v = np.where(fits, lo_v, mid)
            if np.all(hi_v - lo_v <= 1e-12 * hi_v):
                break
        return np.where(sends.any(axis=1), hi_v, float(np.max(self.a)))

    def upper_latency(self) -> float:
        """A latency at which every allowed vector fits: each client's largest payload
        in a 1/n share of the band, by doubling."""
        n = self.bits.shape[0]
        big = np.max(np.where(np.isfinite(self.cost), self.bits, 0.0), axis=1)
        tau = float(np.max(self.a)) + 1e-3
        for _ in range(200):
            w = _weights(self.prob, self.s0, self.s1, self.a, np.full(n, tau))
            if np.all(_bits(np.full(n, self.big_b / n), self.x, w) >= big):
                return tau
            tau = float(np.max(self.a)) + 2 * (tau - float(np.max(self.a)))
        return math.inf

    def solve(self, grid: int = 24, max_vectors: int = 200_000
              ) -> tuple[float, np.ndarray, float]:
        """The optimum: ``(J*, m*, tau*)``; raises ValueError above ``max_vectors``."""
        n, _ = self.cost.shape
        choices = [np.flatnonzero(np.isfinite(self.cost[k])) for k in range(n)]
        total = math.prod(len(c) for c in choices)
        if total > max_vectors:
            raise ValueError(f"{total} rank vectors to enumerate (limit {max_vectors})")
        m = np.array(list(itertools.product(*choices)), dtype=int).reshape(-1, n)
        rows = np.arange(n)[None, :]
        err = self.cost[rows, m].sum(axis=1)
        hi = self.upper_latency()
        if not np.isfinite(hi):
            raise ValueError("no latency fits every rank vector")
        if self.queue == 0:
            i = int(np.argmin(err))
            return float(err[i]), m[i], float(self.min_latency(m[i : i + 1], hi)[0])
        lo = float(np.min(self.a))
        taus = np.linspace(lo, hi, grid + 1)
        first = np.full(len(m), grid)  # first grid index at which a vector fits
        for g in range(grid - 1, 0, -1):
            need = self.need_table(float(taus[g]))
            fits = need[rows, m].sum(axis=1) <= self.big_b
            first = np.where(fits, g, first)
        upper = err + self.queue * taus[first]
        lower = err + self.queue * taus[first - 1]
        keep = np.flatnonzero(lower <= upper.min() * (1 + 1e-12))
        tau = self.min_latency(m[keep], float(hi))
        j = err[keep] + self.queue * tau
        i = int(np.argmin(j))
        return float(j[i]), m[keep[i]], float(tau[i])

    def latency_of(self, m: np.ndarray) -> float:
        """Exact min-max latency of one rank vector."""
        return float(self.min_latency(np.asarray(m, dtype=int)[None, :],
                                      self.upper_latency())[0])
