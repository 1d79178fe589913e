"""Synthetic controller instances: rounds without training, for tests and benchmarks.

Clients have log-uniform SNR-bandwidth products redrawn with Rayleigh fading every
round, compute times, linear payloads ``S(m) = head + m * per_rank`` and importance
spectra ``s_i ~ decay^i`` (with noise) whose energy profile gives ``eps(m)``. The
realised latency of a round is the planned one (no discrete-event play).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wirelessfl.control.base import Controller, LatencyQueue, RoundContext


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

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.rng = rng
        self.c_mean = 10 ** rng.uniform(7.0, 9.0, self.n)  # 10..30 dB over 1 MHz
        self.compute_s = rng.uniform(0.2, 1.0, self.n)
        self.weights = rng.integers(50, 300, self.n).astype(float)
        m = np.arange(self.rank + 1)
        self.bits = np.tile(self.head_bits + m * self.per_rank_bits, (self.n, 1))
        self.bits[:, 0] = self.head_bits

    def context(self, t: int, queue: float, budget: float | None) -> RoundContext:
        g = self.rng.standard_exponential(self.n)
        decay = self.rng.uniform(0.5, 0.9, (self.n, 1))
        s = decay ** np.arange(self.rank)[None, :] * self.rng.uniform(0.8, 1.2,
                                                                      (self.n, self.rank))
        r = np.full(self.n, self.rank)
        return RoundContext(t, np.arange(self.n), self.c_mean * g, 0.05, self.compute_s,
                            self.bits[:, -1], r, self.bandwidth_hz, budget, queue,
                            weights=self.weights, bits=self.bits, eps=eps_profile(s))


def run_rounds(controller: Controller, cell: SyntheticCell, rounds: int,
               budget: float | None) -> dict[str, np.ndarray]:
    """Play ``rounds`` synthetic rounds; per-round latency, queue, error, keep ratio."""
    q = LatencyQueue(budget)
    lat, queue, err, keep = [], [], [], []
    for t in range(rounds):
        ctx = cell.context(t, q.value, budget)
        a = controller.online(ctx)
        m = ctx.ranks if a.keep_ranks is None else a.keep_ranks
        queue.append(q.value)
        latency = float(np.max(a.planned_latency_s))
        lat.append(latency)
        err.append(float(ctx.p @ ctx.eps[np.arange(cell.n), m]))
        keep.append(float(np.mean(m / ctx.ranks)))
        q.update(latency)
    return {"latency_s": np.array(lat), "queue_s": np.array(queue), "eps": np.array(err),
            "keep_ratio": np.array(keep)}
