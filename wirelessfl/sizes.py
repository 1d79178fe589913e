"""Planning numbers: what a round costs before anything is decided.

:class:`RoundSizes` holds the payload table (bits for every client and every number
of kept ranks, computed once), each client's local compute time and energy per FLOP,
and the broadcast size; :func:`smallest_latency_s` bounds the expected round latency
from below whatever the controller decides; :func:`budget_warning` and
:func:`validate_summary` are what ``wirelessfl run`` warns and ``wirelessfl
validate`` prints, from a :class:`Plan`. numpy only (no torch): the workbench's facts
(tensor shapes, FLOPs per step) are handed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wirelessfl.control.planning import stationary
from wirelessfl.sim.expected import round_latency_estimate

#: channel values (links x hold intervals x response size) ``validate``'s latency estimate
#: draws at most after its first round (:func:`~wirelessfl.sim.expected.round_latency_estimate`)
VALIDATE_MAX_VALUES = 1e7


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
        rows = {int(r): [compressor.payload_bits(shapes, int(r), bits_per_value, min(m, int(r)))
                         for m in range(big_r + 1)] for r in np.unique(ranks)}
        return cls.from_rows(rows, ranks, bits_per_value, profiles,
                             float(step_flops * local_steps))

    @classmethod
    def from_rows(cls, rows: dict[int, Sequence[float]], ranks: Sequence[int],
                  bits_per_value: int, profiles: Sequence[Any], round_flops: float
                  ) -> RoundSizes:
        """The sizes from the payload rows of each distinct rank (``rows[r][m]``: bits of a
        rank-r client sending m ranks, m = 0..R) and one local round's FLOPs; the
        device ``profiles``' times are computed once per distinct profile."""
        ranks = np.asarray(ranks, dtype=int)
        distinct, of_rank = np.unique(ranks, return_inverse=True)
        table = np.array([rows[int(r)] for r in distinct], dtype=float)
        kinds = list(dict.fromkeys(profiles))  # the distinct profiles (frozen: hashable)
        index = {p: i for i, p in enumerate(kinds)}
        of_profile = np.fromiter((index[p] for p in profiles), dtype=np.int64,
                                 count=len(profiles))
        times = np.array([p.compute_time_s(round_flops) for p in kinds])
        joules = np.array([p.joules_per_flop for p in kinds])
        return cls(ranks, table[of_rank], float(round_flops), times[of_profile],
                   joules[of_profile], bits_per_value)

    def rows(self) -> dict[int, list[float]]:
        """The payload row of each distinct rank (what :meth:`from_rows` takes)."""
        distinct, first = np.unique(self.ranks, return_index=True)
        return {int(r): self.bits_table[k].tolist() for r, k in zip(distinct, first,
                                                                      strict=True)}

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
        return initial_broadcast_s(cell, self.broadcast_bits(aggregator, state))


def initial_broadcast_s(cell: Any, bits: float) -> float:
    """Broadcast time of ``bits`` (the initial adapter) to every client of ``cell`` at
    time 0 (the population, or its sample: :meth:`Cell.sample`), seconds."""
    return cell.broadcast_time_s(bits, np.arange(cell.count), 0.0)


@dataclass(frozen=True)
class Plan:
    """What a run costs before it starts: the cell, the round sizes and the facts of
    the learning side that ``wirelessfl validate`` prints and the budget check reads.

    Built from a run's components (:meth:`wirelessfl.build.Components.plan`) or, without
    torch, from the learning facts cached by an earlier build
    (:mod:`wirelessfl.preflight`).

    Attributes
    ----------
    scenario : Scenario
    cell : Cell or LazyCell
    sizes : RoundSizes
    n_selected : int
        Clients selected a round.
    broadcast_bits : float
        Downlink payload of the initial adapter, bits.
    sparsifies : bool
        Whether the compressor can send fewer ranks than the client holds.
    needs_budget : bool
        Whether the controller works to a long-term latency budget.
    train_examples, test_examples : int
        Examples in the clients' shards and in the test set.
    trainable_values : int
        Trainable adapter values (the largest rank's).
    """

    scenario: Any
    cell: Any
    sizes: RoundSizes
    n_selected: int
    broadcast_bits: float
    sparsifies: bool
    needs_budget: bool
    train_examples: int
    test_examples: int
    trainable_values: int


def smallest_latency_s(p: Plan) -> float:
    """A lower bound of the expected round latency whatever the controller decides.

    Every client sends its least (one rank when the compressor sparsifies, else
    everything), the planner's law is the channel's stationary one, and the bandwidth
    is min-max over all clients (full participation) or, with partial participation,
    the whole band for each client alone, of which the ``n_selected``-th smallest
    counts. A lazy population is represented by its sample (:meth:`LazyCell.sample`),
    whose slowest client counts. Seconds.
    """
    s = p.sizes
    cell, ids = p.cell.sample(p.n_selected, p.scenario.seed)
    k = len(ids)
    dl = initial_broadcast_s(cell, p.broadcast_bits)
    bits = (s.bits_table[:, 1] if p.sparsifies else s.full_bits)[ids]
    model = stationary(cell, np.arange(k))
    a = dl + s.compute_s[ids]
    band = p.scenario.radio.uplink_bandwidth_hz
    if p.n_selected == k:
        return model.minmax(a, bits, band)[0]
    alone = model.finish_s(np.full(k, band), bits, a)
    return float(np.sort(alone)[min(p.n_selected, k) - 1])


def budget_warning(p: Plan) -> str | None:
    """One line when the latency budget is below :func:`smallest_latency_s`, else None."""
    budget = p.scenario.controller.latency_budget_s
    if budget is None or not p.needs_budget:
        return None
    low = smallest_latency_s(p)
    if budget >= low:
        return None
    return (f"controller.latency_budget_s: {budget:.4g} s is below the smallest expected "
            f"round latency ({low:.4g} s, every client sending the least it can); the run "
            "goes on, the queue grows and the controller sends the least every round")


def validate_summary(p: Plan) -> dict[str, Any]:
    """What ``wirelessfl validate`` prints: sizes and the expected round latency."""
    sc, s = p.scenario, p.sizes
    full = s.full_bits
    cell, ids = p.cell.sample(p.n_selected, sc.seed)
    estimate = round_latency_estimate(
        cell, s.compute_s[ids], full[ids], initial_broadcast_s(cell, p.broadcast_bits),
        sc.sim.expected_latency_rounds, seed=sc.seed,
        precision=sc.sim.expected_latency_precision, max_values=VALIDATE_MAX_VALUES)
    return {
        "clients": sc.clients.count,
        "population": "lazy" if sc.lazy_population else "eager",
        "clients_per_round": p.n_selected,
        "train_examples": p.train_examples,
        "test_examples": p.test_examples,
        "trainable_values": p.trainable_values,
        "lora_ranks": sorted(set(s.ranks.tolist())),
        "uplink_bits_per_client_full_rank": int(full.max()),
        "uplink_bits_per_round_full_rank": int(full.mean() * p.n_selected),
        "training_flops_per_client_round": s.round_flops,
        "compute_s_per_round": float(s.compute_s.max()),
        "expected_round_latency_s": estimate.mean_s,
        "expected_round_latency_se_s": estimate.standard_error_s,
        "expected_latency_rounds_played": estimate.rounds,
        "expected_latency_hold_s": estimate.hold_interval_s,
        "median_client_distance_m": float(np.median(cell.distance_m)),
    }
