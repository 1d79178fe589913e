"""Bandwidth allocation on the FDMA uplink (numpy, vectorised over clients).

``R_k(b) = b log2(1 + c_k / b)`` is concave and increasing in b with supremum
``c_k / ln 2``. The functions here invert it and solve the min-max latency problem

    min_b max_k  a_k + S_k / R_k(b_k)   s.t.  sum_k b_k <= B,

whose optimum equalises the clients' latencies: for a target tau, client k needs
the smallest b_k with ``R_k(b_k) >= S_k / (tau - a_k)``; the target is the smallest
tau whose needs fit in B (bisection).
"""

from __future__ import annotations

import numpy as np
from scipy.special import lambertw

from wirelessfl.network.link import shannon_rate_bps

LN2 = np.log(2.0)


def inverse_rate_hz(rate_bps: np.ndarray, c_hz: np.ndarray) -> np.ndarray:
    """The bandwidth b with ``b log2(1 + c / b) = rate`` (closed form), ``inf`` if none.

    With ``x = c / b`` the equation is ``ln(1 + x) / x = kappa``, ``kappa = rate ln 2 / c``,
    solvable for ``0 < kappa < 1`` by the Lambert W function's lower branch:
    ``1 + x = -W_{-1}(-kappa e^{-kappa}) / kappa``.
    """
    rate = np.asarray(rate_bps, dtype=float)
    c = np.broadcast_to(np.asarray(c_hz, dtype=float), rate.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        kappa = rate * LN2 / c
        inside = (kappa > 0) & (kappa < 1)
        k = np.where(inside, kappa, 0.5)
        y = -np.real(lambertw(-k * np.exp(-k), -1)) / k
        b = c / (y - 1.0)
    b = np.where(inside, b, np.where(rate <= 0, 0.0, np.inf))
    return np.where(np.isfinite(b) & (b < 0), np.inf, b)


def min_bandwidth_hz(rate_bps: np.ndarray, c_hz: np.ndarray, b_max_hz: float) -> np.ndarray:
    """Smallest ``b <= b_max`` with ``R(b) >= rate`` per client; ``inf`` where none exists.

    The closed-form inverse, raised by a relative 1e-9 so that rounding never leaves
    the rate short.
    """
    b = inverse_rate_hz(rate_bps, c_hz) * (1 + 1e-9)
    return np.where(b <= b_max_hz, b, np.inf)


def minmax_allocation(a_s: np.ndarray, bits: np.ndarray, c_hz: np.ndarray,
                      bandwidth_hz: float, iters: int = 60) -> tuple[float, np.ndarray]:
    """The min-max latency allocation: ``(tau, b)`` with ``sum b <= B``.

    Parameters
    ----------
    a_s : ndarray, shape (n,)
        Fixed latency before the upload (downlink + compute), seconds.
    bits : ndarray, shape (n,)
        Payloads S_k, bits.
    c_hz : ndarray, shape (n,)
        SNR-bandwidth products ``p beta g / N0``, Hz.
    bandwidth_hz : float
        Total bandwidth B.

    Returns
    -------
    tau : float
        ``max_k a_k + S_k / R_k(b_k)``, seconds (``inf`` if a client cannot upload).
    b : ndarray, shape (n,)
        The allocation; leftover bandwidth (from the bisection's tolerance) is
        shared equally, so ``sum b = B`` up to rounding.
    """
    a = np.asarray(a_s, dtype=float)
    s = np.asarray(bits, dtype=float)
    c = np.asarray(c_hz, dtype=float)
    n = len(a)
    if n == 0:
        return 0.0, np.zeros(0)
    big_b = float(bandwidth_hz)

    def need(tau: float) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(tau > a, s / (tau - a), np.inf)
        return min_bandwidth_hz(rate, c, big_b)

    b_eq = np.full(n, big_b / n)
    hi = float(np.max(a + s / np.maximum(shannon_rate_bps(b_eq, c), 1e-300)))
    if not np.isfinite(hi):
        return float("inf"), b_eq
    lo = float(np.max(a))
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if np.sum(need(mid)) <= big_b:
            hi = mid
        else:
            lo = mid
    b = need(hi)
    if not np.all(np.isfinite(b)) or b.sum() > big_b:
        b = b_eq
    else:
        b = b + (big_b - b.sum()) / n
    b *= min(1.0, big_b / b.sum())
    return latency_s(a, s, c, b), b


def latency_s(a_s: np.ndarray, bits: np.ndarray, c_hz: np.ndarray, b_hz: np.ndarray) -> float:
    """``max_k a_k + S_k / R_k(b_k)``, seconds."""
    rate = shannon_rate_bps(b_hz, c_hz)
    with np.errstate(divide="ignore"):
        t = np.asarray(a_s) + np.where(rate > 0, np.asarray(bits) / rate, np.inf)
    return float(np.max(t)) if t.size else 0.0
