"""What a planner may believe about a link's gain over a time window: the window law.

A base station that plans an upload knows the gain it measured at some time and the
channel's law; the upload then runs over many coherence blocks. :class:`WindowLaw`
holds, per link, a flat list of quadrature nodes ``(gain, prob, start_s, end_s)``:
over the time segment ``[start_s, end_s)`` the gain takes the node values with the
node probabilities (the probabilities of one segment sum to 1). For any function f,

    E[ integral_{t0}^{t1} f(g(t)) dt ]  ~=  sum_m prob_m * |[t0, t1] & [start_m, end_m)| * f(g_m).

With ``f(g) = b log2(1 + c g / b)`` this is the expected number of bits a bandwidth b
delivers between t0 and t1 (the planner's model; see ``wirelessfl.control.planning``).
Segments of different nodes may coincide (nodes of one law) or follow one another
(the known gain until the block ends, then the stationary law).

numpy only: nothing here knows about federated learning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUADRATURE_NODES = 16


@dataclass
class WindowLaw:
    """Quadrature of each link's gain law over time.

    Attributes
    ----------
    gains : ndarray, shape (n, M)
        Small-scale power gains of the nodes (dimensionless, unit mean power).
    probs : ndarray, shape (n, M)
        Probability of each node within its segment.
    start_s, end_s : ndarray, shape (n, M)
        Absolute simulated times bounding each node's segment, seconds (``-inf`` and
        ``inf`` allowed).
    """

    gains: np.ndarray
    probs: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray

    @property
    def n(self) -> int:
        return self.gains.shape[0]

    def weights_s(self, t0_s: np.ndarray, t1_s: np.ndarray) -> np.ndarray:
        """``prob_m * |[t0, t1] & [start_m, end_m)|`` per node, seconds.

        Parameters
        ----------
        t0_s, t1_s : ndarray, shape (n,) or (n, K)
            Window bounds per link (and per extra axis K).

        Returns
        -------
        ndarray, shape (n, M) or (n, K, M)
        """
        t0 = np.asarray(t0_s, dtype=float)[..., None]
        t1 = np.asarray(t1_s, dtype=float)[..., None]
        extra = (slice(None),) + (None,) * (t0.ndim - 2) + (slice(None),)
        lo = np.maximum(t0, self.start_s[extra])
        hi = np.minimum(t1, self.end_s[extra])
        return self.probs[extra] * np.maximum(hi - lo, 0.0)

    def segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct time segments: nodes whose bounds agree on every link share one.

        Returns
        -------
        start_s, end_s : ndarray, shape (n, S)
            Each segment's bounds per link, seconds.
        of_node : ndarray of int, shape (M,)
            The segment of each node.
        """
        cached = self.__dict__.get("_segments")  # (start_s, end_s, answer) last asked
        if cached is not None and cached[0] is self.start_s and cached[1] is self.end_s:
            return cached[2]
        seen: dict[bytes, int] = {}
        of_node = np.empty(self.start_s.shape[1], dtype=int)
        for m in range(len(of_node)):
            key = self.start_s[:, m].tobytes() + self.end_s[:, m].tobytes()
            of_node[m] = seen.setdefault(key, len(seen))
        first = np.array([int(np.argmax(of_node == s)) for s in range(len(seen))], dtype=int)
        out = self.start_s[:, first], self.end_s[:, first], of_node
        # the same arrays asked again get the same answer (a law's arrays are never
        # changed in place; new arrays, as in ``block``, are asked afresh)
        self.__dict__["_segments"] = (self.start_s, self.end_s, out)
        return out

    def shifted(self, dt_s: float) -> WindowLaw:
        """The same law with times measured from ``dt_s`` (``t - dt_s``)."""
        return WindowLaw(self.gains, self.probs, self.start_s - dt_s, self.end_s - dt_s)

    def take(self, links: np.ndarray) -> WindowLaw:
        """The law of the given links only."""
        return WindowLaw(self.gains[links], self.probs[links], self.start_s[links],
                         self.end_s[links])

    # ------------------------------------------------------------------ constructors

    @staticmethod
    def known(gain: np.ndarray) -> WindowLaw:
        """The gain holds for ever (time-invariant channel, or the planner trusts it).

        ``gain`` of shape (n,), or (n, Q) for Q equal-weight sub-bands (Q nodes of
        probability 1/Q: the mean of the sub-bands' rates).
        """
        g = _as_nodes(gain)
        return WindowLaw(g, np.full_like(g, 1.0 / g.shape[1]), np.full_like(g, -np.inf),
                         np.full_like(g, np.inf))

    @staticmethod
    def stationary(n: int, gains: np.ndarray, probs: np.ndarray, from_s: float) -> WindowLaw:
        """The stationary law from ``from_s`` on; ``gains, probs`` of shape (n or 1, Q)."""
        g = np.broadcast_to(gains, (n, gains.shape[-1])).astype(float)
        p = np.broadcast_to(probs, g.shape).astype(float)
        return WindowLaw(g, p, np.full_like(g, from_s), np.full_like(g, np.inf))

    @staticmethod
    def concat(parts: list[WindowLaw]) -> WindowLaw:
        """The nodes of several laws side by side (their segments must not overlap)."""
        return WindowLaw(*(np.concatenate([getattr(p, f) for p in parts], axis=1)
                           for f in ("gains", "probs", "start_s", "end_s")))

    @staticmethod
    def block(gain: np.ndarray, known_until_s: np.ndarray, gains: np.ndarray,
              probs: np.ndarray) -> WindowLaw:
        """The known gain until ``known_until_s``, then i.i.d. draws of the stationary law.

        ``gain`` of shape (n,), or (n, Q) for Q equal-weight sub-bands.
        """
        g = _as_nodes(gain)
        n = g.shape[0]
        until = np.broadcast_to(np.asarray(known_until_s, dtype=float), (n,))
        now = WindowLaw(g, np.full_like(g, 1.0 / g.shape[1]), np.full_like(g, -np.inf),
                        np.broadcast_to(until[:, None], g.shape).copy())
        rest = WindowLaw.stationary(n, gains, probs, 0.0)
        rest.start_s = np.broadcast_to(until[:, None], rest.gains.shape).copy()
        return WindowLaw.concat([now, rest])


def _as_nodes(gain: np.ndarray) -> np.ndarray:
    """Known gains as nodes, shape (n, Q): a (n,) vector is one node per link."""
    g = np.asarray(gain, dtype=float)
    return g[:, None] if g.ndim == 1 else g


def equal_probability_nodes(samples: np.ndarray, q: int = QUADRATURE_NODES
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature of an empirical law: means of ``q`` equal-probability bins.

    Parameters
    ----------
    samples : ndarray, shape (..., S)
        Draws of the gain along the last axis (S >= q).

    Returns
    -------
    gains : ndarray, shape (..., q)
        The mean of each bin of sorted samples (bin j holds quantiles j/q..(j+1)/q).
    probs : ndarray, shape (..., q)
        Each bin's share of the samples.
    """
    s = np.sort(np.asarray(samples, dtype=float), axis=-1)
    edges = np.linspace(0, s.shape[-1], q + 1).round().astype(int)
    sums = np.add.reduceat(s, edges[:-1], axis=-1)
    counts = np.diff(edges).astype(float)
    return sums / counts, np.broadcast_to(counts / counts.sum(), sums.shape).copy()


def exponential_nodes(q: int = QUADRATURE_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Exact equal-probability bin means of the unit-mean exponential law (Rayleigh).

    Bin j covers ``[x_j, x_{j+1})`` with ``x_j = -ln(1 - j / q)``; its conditional mean
    is ``q * ((x_j + 1) e^{-x_j} - (x_{j+1} + 1) e^{-x_{j+1}})``.
    """
    u = np.arange(q + 1) / q
    with np.errstate(divide="ignore"):
        x = -np.log1p(-u)
    tail = np.where(np.isfinite(x), (x + 1) * np.exp(-np.where(np.isfinite(x), x, 0.0)), 0.0)
    return q * (tail[:-1] - tail[1:]), np.full(q, 1.0 / q)


def _bins(q: int) -> np.ndarray:
    """Probabilities ``j / q``, j = 0..q."""
    return np.arange(q + 1) / q


def gamma_nodes(shape: float, scale: float, q: int = QUADRATURE_NODES
                ) -> tuple[np.ndarray, np.ndarray]:
    """Exact equal-probability bin means of a Gamma(shape, scale) law.

    With ``F_a`` the Gamma(a, scale) CDF and ``x_j = F_shape^-1(j / q)``, the identity
    ``x f_shape(x) = shape scale f_{shape+1}(x)`` gives bin j's conditional mean
    ``q shape scale (F_{shape+1}(x_{j+1}) - F_{shape+1}(x_j))``; the bins' mean is
    exactly ``shape scale``.
    """
    from scipy import stats

    x = stats.gamma.ppf(_bins(q), shape, scale=scale)
    upper = stats.gamma.cdf(x, shape + 1, scale=scale)
    return q * shape * scale * np.diff(upper), np.full(q, 1.0 / q)


def rician_nodes(k: float, q: int = QUADRATURE_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Exact equal-probability bin means of the unit-mean Rician power law (K-factor k).

    ``y = 2 (k + 1) |h|^2`` is noncentral chi-square with 2 degrees of freedom and
    noncentrality ``lam = 2 k``. With ``F_d`` its CDF at d degrees of freedom, the
    identity ``y f_2(y) = 2 f_4(y) + lam f_6(y)`` gives bin j's conditional mean of y as
    ``q (2 dF_4 + lam dF_6)`` over the bin; the bins' mean is exactly 1. ``k = 0`` is
    the exponential law (:func:`exponential_nodes`).
    """
    if k <= 0:
        return exponential_nodes(q)
    from scipy import stats

    lam = 2.0 * k
    y = stats.ncx2.ppf(_bins(q), 2, lam)
    part = 2 * np.diff(stats.ncx2.cdf(y, 4, lam)) + lam * np.diff(stats.ncx2.cdf(y, 6, lam))
    return q * part / (2 * (k + 1)), np.full(q, 1.0 / q)
