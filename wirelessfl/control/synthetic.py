"""Synthetic controller instances: rounds without training, for tests and benchmarks.

Clients have log-uniform SNR-bandwidth products, compute times, linear payloads
``S(m) = head + m * per_rank`` and importance spectra ``s_i ~ decay^i`` (with noise)
whose energy profile gives ``eps(m)``.

Two channel regimes:

* ``coherence_time_s=None`` (the default, for quick unit tests): one Rayleigh gain
  per round, trusted by the planner, and the realised latency is the planned one.
  Its latency has an infinite mean (``E[1/g] = inf``): fine for one-round checks,
  meaningless for long-term averages.
* ``coherence_time_s`` given: block Rayleigh fading with that block length on the
  simulated clock. The controller plans with the channel's window law (the gain it
  measured at the round start while that block lasts, then the exponential law),
  and the round's realised latency integrates the rate over the blocks the upload
  really sees (:func:`realised_finish_s`). Uploads that span many blocks have
  finite moments, so Lyapunov averages converge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from channels.law import WindowLaw
from channels.rayleigh import BlockRayleigh, RayleighParams
from wirelessfl.control.base import Controller, LatencyQueue, RoundContext
from wirelessfl.control.planning import UplinkModel


def eps_profile(s: np.ndarray) -> np.ndarray:
    """``eps(m) = 1 - (energy of the top m ranks) / total``, m = 0..r, shape (n, r + 1)."""
    e = np.sort(s**2, axis=1)[:, ::-1]
    kept = np.cumsum(e, axis=1) / e.sum(axis=1, keepdims=True)
    eps = np.concatenate([np.ones((s.shape[0], 1)), 1.0 - kept], axis=1)
    eps[:, -1] = 0.0
    return np.clip(eps, 0.0, 1.0)


@dataclass
class SyntheticCell:
    """Static parts of a synthetic instance."""

    n: int
    rank: int = 8
    bandwidth_hz: float = 10e6
    head_bits: float = 6.4e4
    per_rank_bits: float = 6e5
    seed: int = 0
    coherence_time_s: float | None = None
    compute_range_s: tuple[float, float] = (0.2, 1.0)
    csi: str = "auto"

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.rng = rng
        self.c_mean = 10 ** rng.uniform(7.0, 9.0, self.n)  # 10..30 dB over 1 MHz
        self.compute_s = rng.uniform(*self.compute_range_s, self.n)
        self.weights = rng.integers(50, 300, self.n).astype(float)
        m = np.arange(self.rank + 1)
        self.bits = np.tile(self.head_bits + m * self.per_rank_bits, (self.n, 1))
        self.bits[:, 0] = self.head_bits
        self.channel = None
        if self.coherence_time_s is not None:
            self.channel = BlockRayleigh(RayleighParams(coherence_time_s=self.coherence_time_s))
            self.channel.reset(self.n, np.random.default_rng([self.seed, 1]))
        self.now_s = 0.0

    def context(self, t: int, queue: float, budget: float | None) -> RoundContext:
        uplink = None
        if self.channel is None:
            g = self.rng.standard_exponential(self.n)
        else:
            g = self.channel.gains(np.array([self.now_s]))[:, 0]
            law = (WindowLaw.known(g) if self.csi == "instantaneous" else
                   self.channel.window_law(g, self.now_s, self.now_s).shifted(self.now_s))
            uplink = UplinkModel(self.c_mean, law)
        decay = self.rng.uniform(0.5, 0.9, (self.n, 1))
        s = decay ** np.arange(self.rank)[None, :] * self.rng.uniform(0.8, 1.2,
                                                                      (self.n, self.rank))
        r = np.full(self.n, self.rank)
        return RoundContext(t, np.arange(self.n), self.c_mean * g, 0.05, self.compute_s,
                            self.bits[:, -1], r, self.bandwidth_hz, budget, queue,
                            weights=self.weights, bits=self.bits, eps=eps_profile(s),
                            uplink=uplink)

    def realised_latency_s(self, ctx: RoundContext, b_hz: np.ndarray, bits: np.ndarray) -> float:
        """The round's latency on the channel as it evolves, then the clock moves on."""
        if self.channel is None:
            return float("nan")
        sends = bits > 0
        fin = realised_finish_s(self.channel, self.c_mean[sends], b_hz[sends], bits[sends],
                                self.now_s + ctx.start_s[sends], np.flatnonzero(sends))
        end = float(np.max(fin)) if fin.size else self.now_s + float(np.max(ctx.start_s))
        latency = end - self.now_s
        self.now_s = end
        return latency


def realised_finish_s(channel, c_hz: np.ndarray, b_hz: np.ndarray, bits: np.ndarray,
                      start_s: np.ndarray, links: np.ndarray, chunk: int = 256) -> np.ndarray:
    """When each upload ends on a block-fading channel: exact integration block by block.

    Parameters
    ----------
    channel : a block-fading channel (gains constant within ``coherence_time_s``)
    c_hz, b_hz, bits, start_s : ndarray, shape (n,)
        Large-scale SNR-bandwidth product, bandwidth, payload and absolute start.
    links : ndarray of int, shape (n,)
        The channel link of each upload.

    Returns
    -------
    ndarray, shape (n,): absolute finish times, s (``inf`` without bandwidth).
    """
    tc = channel.coherence_time_s
    n = len(bits)
    out = np.full(n, np.inf)
    left = np.asarray(bits, dtype=float).copy()
    t = np.asarray(start_s, dtype=float).copy()
    live = (b_hz > 0) & (left > 0)
    out[left <= 0] = t[left <= 0]
    j = np.floor(t / tc).astype(np.int64)
    for _ in range(10_000):
        if not live.any():
            break
        blocks = j[:, None] + np.arange(chunk)[None, :]  # (n, chunk)
        g = channel.gains((blocks.ravel() + 0.5) * tc)  # (links, n * chunk)
        g = g[links[:, None], np.arange(n * chunk).reshape(n, chunk)]
        rate = b_hz[:, None] * np.log2(1 + c_hz[:, None] * g / np.maximum(b_hz, 1e-300)[:, None])
        ends = (blocks + 1) * tc
        dur = np.diff(np.concatenate([t[:, None], ends], axis=1), axis=1)
        got = np.cumsum(rate * dur, axis=1)
        done = live & (got[:, -1] >= left)
        for k in np.flatnonzero(done):
            i = int(np.searchsorted(got[k], left[k]))
            before = got[k, i - 1] if i > 0 else 0.0
            t0 = t[k] if i == 0 else ends[k, i - 1]
            out[k] = t0 + (left[k] - before) / rate[k, i]
        go = live & ~done
        left[go] -= got[go, -1]
        t[go] = ends[go, -1]
        j[go] += chunk
        live = go
    return out


def run_rounds(controller: Controller, cell: SyntheticCell, rounds: int,
               budget: float | None) -> dict[str, np.ndarray]:
    """Play ``rounds`` synthetic rounds; per-round latency, queue, error, keep ratio."""
    q = LatencyQueue(budget)
    lat, queue, err, keep = [], [], [], []
    planned = []
    for t in range(rounds):
        ctx = cell.context(t, q.value, budget)
        a = controller.online(ctx)
        m = ctx.ranks if a.keep_ranks is None else a.keep_ranks
        queue.append(q.value)
        plan = float(np.max(a.planned_latency_s))
        planned.append(plan)
        bits = np.where(m > 0, ctx.bits[np.arange(cell.n), np.maximum(m, 1)], 0.0)
        latency = plan if cell.channel is None else cell.realised_latency_s(ctx, a.bandwidth_hz,
                                                                            bits)
        lat.append(latency)
        err.append(float(ctx.p @ ctx.eps[np.arange(cell.n), m]))
        keep.append(float(np.mean(m / ctx.ranks)))
        q.update(latency)
    return {"latency_s": np.array(lat), "queue_s": np.array(queue), "eps": np.array(err),
            "keep_ratio": np.array(keep), "planned_s": np.array(planned)}
