"""Planning numbers: what a round costs before anything is decided.

:class:`RoundSizes` holds the payload table (bits for every client and every number
of kept ranks, computed once), each client's local compute time and energy per FLOP,
and the broadcast size; :func:`smallest_latency_s` bounds the expected round latency
from below whatever the controller decides; :func:`budget_warning` and
:func:`validate_summary` are what ``wirelessfl run`` warns and ``wirelessfl
validate`` prints. numpy only: the workbench's facts (tensor shapes, FLOPs per step)
are handed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wirelessfl.control.planning import stationary
from wirelessfl.learning.partition import shard_sizes
from wirelessfl.sim.expected import expected_round_latency_s


@dataclass(frozen=True)
class RoundSizes:
    """Per-client sizes of a round (K clients, R the largest rank).

    Attributes
    ----------
    ranks : ndarray of int, shape (K,)
        Each client's LoRA rank r_k.
    bits_table : ndarray, shape (K, R + 1)
        Payload of client k sending m ranks at ``[k, m]``, bits; entries above r_k
        repeat its full payload.
    round_flops : float
        Training FLOPs of one client's local round.
    compute_s : ndarray, shape (K,)
        Local computation time of one round on each client's device, seconds.
    joules_per_flop : ndarray, shape (K,)
        Each client's device energy per FLOP, J.
    bits_per_value : int
        Bits per transmitted value q.
    """

    ranks: np.ndarray
    bits_table: np.ndarray
    round_flops: float
    compute_s: np.ndarray
    joules_per_flop: np.ndarray
    bits_per_value: int

    @classmethod
    def measure(cls, compressor: Any, shapes: dict[str, tuple[int, ...]], ranks: Sequence[int],
                bits_per_value: int, profiles: Sequence[Any], step_flops: float,
                local_steps: int) -> RoundSizes:
        """The sizes of a run: the compressor's payloads for the model's tensor
        ``shapes``, the device ``profiles``' times for ``step_flops * local_steps``
        (each computed once per distinct rank and profile)."""
        ranks = np.asarray(ranks, dtype=int)
        big_r = int(ranks.max())
        distinct, of_rank = np.unique(ranks, return_inverse=True)
        rows = np.array([[compressor.payload_bits(shapes, int(r), bits_per_value,
                                                  min(m, int(r)))
                          for m in range(big_r + 1)] for r in distinct], dtype=float)
        flops = float(step_flops * local_steps)
        kinds = list(dict.fromkeys(profiles))  # the distinct profiles (frozen: hashable)
        index = {p: i for i, p in enumerate(kinds)}
        of_profile = np.fromiter((index[p] for p in profiles), dtype=np.int64,
                                 count=len(profiles))
        times = np.array([p.compute_time_s(flops) for p in kinds])
        joules = np.array([p.joules_per_flop for p in kinds])
        return cls(ranks, rows[of_rank], flops, times[of_profile], joules[of_profile],
                   bits_per_value)

    @property
    def full_bits(self) -> np.ndarray:
        """Uplink payload per client at its full rank r_k, bits, shape (K,)."""
        return self.bits_table[np.arange(len(self.ranks)), self.ranks]

    def broadcast_bits(self, aggregator: Any, state: dict[str, Any]) -> int:
        """Downlink payload of the global adapter ``state`` under ``aggregator``, bits."""
        return aggregator.downlink_numels(state) * self.bits_per_value

    def initial_broadcast_s(self, cell: Any, aggregator: Any, state: dict[str, Any]) -> float:
        """Broadcast time of the initial adapter to every client of ``cell`` at time 0
        (the population, or its sample: :meth:`Cell.sample`), seconds."""
        links = np.arange(cell.count)
        return cell.broadcast_time_s(self.broadcast_bits(aggregator, state), links, 0.0)


def smallest_latency_s(c: Any) -> float:
    """A lower bound of the expected round latency whatever the controller decides.

    ``c`` is the run's :class:`wirelessfl.build.Components`. Every client sends its
    least (one rank when the compressor sparsifies, else everything), the planner's
    law is the channel's stationary one, and the bandwidth is min-max over all
    clients (full participation) or, with partial participation, the whole band for
    each client alone, of which the ``n_selected``-th smallest counts. A lazy
    population is represented by its sample (:meth:`LazyCell.sample`), whose slowest
    client counts. Seconds.
    """
    s = c.sizes
    cell, ids = c.cell.sample(c.n_selected, c.scenario.seed)
    k = len(ids)
    dl = s.initial_broadcast_s(cell, c.aggregator, c.bench.initial_state)
    bits = (s.bits_table[:, 1] if c.compressor.sparsifies else s.full_bits)[ids]
    model = stationary(cell, np.arange(k))
    a = dl + s.compute_s[ids]
    band = c.scenario.radio.uplink_bandwidth_hz
    if c.n_selected == k:
        return model.minmax(a, bits, band)[0]
    alone = model.finish_s(np.full(k, band), bits, a)
    return float(np.sort(alone)[min(c.n_selected, k) - 1])


def budget_warning(c: Any) -> str | None:
    """One line when the latency budget is below :func:`smallest_latency_s`, else None."""
    budget = c.scenario.controller.latency_budget_s
    if budget is None or not c.controller.needs_budget:
        return None
    low = smallest_latency_s(c)
    if budget >= low:
        return None
    return (f"controller.latency_budget_s: {budget:.4g} s is below the smallest expected "
            f"round latency ({low:.4g} s, every client sending the least it can); the run "
            "goes on, the queue grows and the controller sends the least every round")


def validate_summary(c: Any) -> dict[str, Any]:
    """What ``wirelessfl validate`` prints: sizes and the expected round latency."""
    sc, s, bench = c.scenario, c.sizes, c.bench
    full = s.full_bits
    cell, ids = c.cell.sample(c.n_selected, sc.seed)
    return {
        "clients": sc.clients.count,
        "population": "lazy" if sc.lazy_population else "eager",
        "clients_per_round": c.n_selected,
        "train_examples": int(shard_sizes(bench.shards.train).sum()),
        "test_examples": int(len(bench.shards.test)),
        "trainable_values": int(sum(bench.numels.values())),
        "lora_ranks": sorted(set(s.ranks.tolist())),
        "uplink_bits_per_client_full_rank": int(full.max()),
        "uplink_bits_per_round_full_rank": int(full.mean() * c.n_selected),
        "training_flops_per_client_round": s.round_flops,
        "compute_s_per_round": float(s.compute_s.max()),
        "expected_round_latency_s": expected_round_latency_s(
            cell, s.compute_s[ids], full[ids], s.initial_broadcast_s(cell, c.aggregator,
                                                                     bench.initial_state),
            sc.sim.expected_latency_rounds, seed=sc.seed),
        "median_client_distance_m": float(np.median(cell.distance_m)),
    }
