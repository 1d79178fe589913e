"""Planning an upload by the law of its finishing time: sample paths of the gain.

The mean-rate planner (:class:`~wirelessfl.control.planning.UplinkModel`) finds the
deadline by which the *expected* bits reach the payload, ``E[D(b, tau)] = S``. When an
upload spans only a few coherence times, the upload time ``T`` (the first time the
delivered bits reach S) is a convex function of the rates, and ``E[T]`` lies above
that deadline: the plan is optimistic (+18% to +25% for a weak client under slow
Jakes fading). :class:`PathModel` plans with ``E[T]`` itself, estimated over P sample
paths of each client's gain drawn from the channel's conditional law given the CSI
(``Channel.sample_paths``), the same paths for every bandwidth tried (common random
numbers), so ``E[T](b)`` is smooth and decreasing in b.

numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: sample paths per client, and at most this many cells over the planning horizon
PATHS, PATH_CELLS = 32, 1024


@dataclass
class PathModel:
    """Sample paths of the n selected clients' gains over a grid of cells.

    Attributes
    ----------
    c_hz : ndarray, shape (n,)
        Large-scale SNR-bandwidth products (no fading), Hz.
    gains : ndarray, shape (n, P, G) or (n, P, G, Q)
        Small-scale gain of path p in cell j (constant within the cell), per sub-band
        for a wideband channel (the rate is the mean over Q of Shannon's).
    edges_s : ndarray, shape (G + 1,)
        Cell bounds relative to the round start, seconds; beyond the last one each
        path goes on at its mean rate since the upload started.
    """

    c_hz: np.ndarray
    gains: np.ndarray
    edges_s: np.ndarray

    def take(self, idx: np.ndarray) -> PathModel:
        return PathModel(self.c_hz[idx], self.gains[idx], self.edges_s)

    def finish_paths_s(self, b_hz: np.ndarray, bits: np.ndarray, a_s: np.ndarray
                       ) -> np.ndarray:
        """Each path's upload end after the round start, shape (n, P); ``a_k`` for an
        empty payload, ``inf`` without bandwidth."""
        b = np.asarray(b_hz, dtype=float)[:, None, None]
        s = np.asarray(bits, dtype=float)[:, None]
        a = np.asarray(a_s, dtype=float)
        lo, hi = self.edges_s[:-1], self.edges_s[1:]
        dur = np.clip(hi[None, :] - a[:, None], 0.0, hi - lo)  # (n, G) after the start
        g = self.gains  # (n, P, G) or (n, P, G, Q)
        bq = b.reshape(b.shape + (1,) * (g.ndim - 3))
        cq = self.c_hz.reshape((-1,) + (1,) * (g.ndim - 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = bq * np.log2(1.0 + cq * g / bq)
            if g.ndim == 4:  # the sub-band rate: mean over Q
                rate = rate.mean(axis=-1)
            rate = np.where(b > 0, rate, 0.0)  # (n, P, G)
        got = np.cumsum(rate * dur[:, None, :], axis=2)
        done = got >= s[:, :, None]
        hit = done.any(axis=2)
        j = np.argmax(done, axis=2)  # first cell that completes
        before = np.where(j > 0, np.take_along_axis(got, np.maximum(j - 1, 0)[..., None],
                                                    2)[..., 0], 0.0)
        r_j = np.take_along_axis(rate, j[..., None], 2)[..., 0]
        cell_start = np.maximum(lo[j], a[:, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = cell_start + (s - before) / r_j
            # not done by the last cell: the path's mean rate since the start goes on
            mean_rate = got[:, :, -1] / np.maximum(hi[-1] - a, 1e-300)[:, None]
            beyond = hi[-1] + (s - got[:, :, -1]) / mean_rate
        t = np.where(hit, inside, beyond)
        t = np.where(np.isfinite(t) & (b[:, :, 0] > 0), t, np.inf)
        return np.where(s <= 0, a[:, None], np.maximum(t, a[:, None]))

    def expected_finish_s(self, b_hz: np.ndarray, bits: np.ndarray, a_s: np.ndarray
                          ) -> np.ndarray:
        """``E[T_k]`` over the paths, shape (n,)."""
        return self.finish_paths_s(b_hz, bits, a_s).mean(axis=1)

    def expected_latest_s(self, b_hz: np.ndarray, bits: np.ndarray, a_s: np.ndarray) -> float:
        """``E[max_k T_k]``: the round's expected end (clients' paths are independent)."""
        t = self.finish_paths_s(b_hz, bits, a_s)
        return float(t.max(axis=0).mean()) if t.size else 0.0


def uplink_paths(cell, uplink, links: np.ndarray, t_s: float, csi: np.ndarray,
                 start_s: np.ndarray, full_bits: np.ndarray, bandwidth_hz: float,
                 max_upload_s: float, rng: np.random.Generator) -> PathModel:
    """The planner's sample paths of the selected clients' gains for a round at ``t_s``.

    Cells of the channel's path interval (16 to :data:`PATH_CELLS`) up to four times
    the mean-rate min-max latency of full-rank uploads (``max_upload_s`` when that is
    not finite); :data:`PATHS` paths per client from ``rng``.
    """
    tau, _ = uplink.minmax(start_s, full_bits, bandwidth_hz)
    horizon = 4 * tau if np.isfinite(tau) and tau > 0 else max_upload_s
    hold = cell.channel.path_interval_s
    cells = PATH_CELLS if not np.isfinite(hold) else int(
        np.clip(np.ceil(horizon / hold), 16, PATH_CELLS))
    edges = np.linspace(0.0, horizon, cells + 1)
    gains = cell.uplink_path_gains(links, t_s, csi, edges, PATHS, rng)
    return PathModel(cell.uplink_c_hz(np.asarray(links)), gains, edges)
