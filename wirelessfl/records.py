"""What is recorded of a run: the loop's running state, and a played round as rows.

:class:`LoopState` is everything the next round and the summary depend on (and what
a checkpoint saves of the loop). :class:`PlayedRound` is what one round produced;
:func:`metrics_row`, :func:`client_rows` and :func:`round_events` turn it into the
``metrics.csv`` row, the ``clients.csv`` rows and the ``events.jsonl`` records, and
:func:`summary` turns the final state into ``summary.json``. Pure functions: no
torch, no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


@dataclass
class LoopState:
    """The round loop's state after round :attr:`round` (``-1``: before round 0).

    Attributes
    ----------
    state : dict of str to Tensor
        The global adapter.
    sampling : numpy Generator
        The client-selection stream.
    queue : float
        The latency queue Q, seconds.
    t_now : float
        Simulated time, seconds.
    cum_up, cum_dn : int
        Uplink and downlink bits so far.
    lat_sum : float
        Sum of the round latencies, seconds.
    evaluation : dict of str to float
        The latest evaluation's metrics, in the task's column order (accuracy and
        loss; loss and perplexity); empty before any.
    best : float
        The best value of the task's quality metric so far (NaN before any).
    wall : dict of str to float
        Host timings summed over the rounds (the controller's), seconds.
    aggregated : int
        Rounds in which at least one update arrived.
    wall_time_s : float
        Host time of the rounds played before this process took over (a resume).
    """

    state: dict[str, Any]
    sampling: np.random.Generator
    round: int = -1
    queue: float = 0.0
    t_now: float = 0.0
    cum_up: int = 0
    cum_dn: int = 0
    lat_sum: float = 0.0
    evaluation: dict[str, float] = field(default_factory=dict)
    best: float = math.nan
    wall: dict[str, float] = field(default_factory=dict)
    aggregated: int = 0
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (shallow: tensors are not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class PlayedRound:
    """Everything one round produced, for the n selected clients.

    ``metrics`` merges the aggregator's, the compressors' (mean over clients) and the
    controller's per-round values; ``events`` the controller's records and the loop's
    own (stamped with the round), before drops and the timeline; ``timings`` the
    controller's host times (s); ``distance_m`` and ``gain_db`` the selected clients'
    distances (m) and large-scale gains (dB) at the round start.
    """

    state: dict[str, Any]
    ctx: Any
    alloc: Any
    updates: list[Any]
    packets: list[Any]
    schedule: Any
    outcome: Any
    downlink_bits: int
    downlink_s: float
    uplink_bits: int
    energy: tuple[np.ndarray, np.ndarray]
    metrics: dict[str, float]
    events: list[dict[str, Any]]
    timings: dict[str, float]
    distance_m: np.ndarray
    gain_db: np.ndarray


def finite_mean(values: list[float]) -> float:
    """Mean of the finite values, NaN when there are none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def metrics_row(r: PlayedRound, loop: LoopState, latency_s: float, queue_before: float,
                evaluated: bool, metrics: tuple[str, ...],
                personal: tuple[str, float] | None) -> dict[str, Any]:
    """The ``metrics.csv`` row of round ``loop.round`` (``loop`` already updated by it).

    ``metrics`` are the task's evaluation columns (from ``loop.evaluation`` when the
    round was evaluated, else NaN); ``personal`` the personalised methods' column and
    its value (e.g. ``("personal_accuracy", 0.8)``), else None.
    """
    t = loop.round
    return {
        "round": t,
        "sim_time_s": loop.t_now,
        "round_latency_s": latency_s,
        "planned_latency_s": float(np.max(r.alloc.planned_latency_s)),
        "avg_latency_s": loop.lat_sum / (t + 1),
        "downlink_s": r.downlink_s,
        "uplink_bits": r.uplink_bits,
        "cum_uplink_bits": loop.cum_up,
        "downlink_bits": r.downlink_bits,
        "cum_downlink_bits": loop.cum_dn,
        "selected": len(r.schedule.links),
        "received": int(r.outcome.received.sum()),
        "dropped": int((~r.outcome.received).sum()),
        "queue_s": queue_before,
        "tx_energy_j": float(r.energy[0].sum()),
        "compute_energy_j": float(r.energy[1].sum()),
        "train_loss": finite_mean([u.train_loss for u in r.updates]),
        **{m: loop.evaluation.get(m, math.nan) if evaluated else math.nan for m in metrics},
        **(dict([personal]) if personal is not None else {}),
        **r.metrics,
    }


def client_rows(t: int, r: PlayedRound) -> list[dict[str, Any]]:
    """The ``clients.csv`` rows of round ``t``, one per selected client."""
    ctx, alloc, out, energy = r.ctx, r.alloc, r.outcome, r.energy
    rows = []
    for i, k in enumerate(ctx.client_ids):
        b = float(alloc.bandwidth_hz[i])
        packet = r.packets[i]
        rows.append({
            "round": t,
            "client": int(k),
            "num_samples": r.updates[i].num_samples,
            "train_loss": r.updates[i].train_loss,
            "distance_m": float(r.distance_m[i]),
            "gain_db": float(r.gain_db[i]),
            "snr_db": float(10 * np.log10(ctx.c_hz[i] / b)) if b > 0 else float("nan"),
            "bandwidth_hz": b,
            **({} if alloc.resource_blocks is None
               else {"resource_blocks": int(alloc.resource_blocks[i])}),
            "rank": int(ctx.ranks[i]),
            "keep_ranks": (int(ctx.ranks[i]) if alloc.keep_ranks is None
                           else int(alloc.keep_ranks[i])),
            "payload_bits": packet.payload_bits if packet is not None else 0,
            "compute_s": float(ctx.compute_s[i]),
            "planned_latency_s": float(alloc.planned_latency_s[i]),
            "planned_upload_s": float(alloc.planned_latency_s[i] - ctx.downlink_s
                                      - ctx.compute_s[i]),
            "realised_upload_s": float(out.upload_s[i]) if out.received[i] else float("nan"),
            "realised_latency_s": float(out.finish_s[i] - r.schedule.start_s)
            if out.received[i] else float("nan"),
            "tx_energy_j": float(energy[0][i]),
            "compute_energy_j": float(energy[1][i]),
            "received": bool(out.received[i]),
            "drop_reason": out.drop_reason[i],
            **r.updates[i].metrics,
            **(packet.metrics if packet is not None else {}),
        })
    return rows


def round_events(t: int, r: PlayedRound) -> list[dict[str, Any]]:
    """The round's ``events.jsonl`` records: its own, drops, the timeline, host timings."""
    events = list(r.events)
    for i, reason in enumerate(r.outcome.drop_reason):
        if reason:
            events.append({"round": t, "event": "drop", "client": int(r.ctx.client_ids[i]),
                           "reason": reason})
    events.append({"round": t, "event": "timeline", "phases": r.outcome.events})
    if r.timings:
        events.append({"round": t, "event": "timing", **r.timings})
    return events


def summary(info: dict[str, Any], loop: LoopState, rounds: int,
            wall_time_s: float) -> dict[str, Any]:
    """``summary.json``: the run's description ``info`` (name, seed, method, model, the
    task's ``quality_metric``, ...), its final numbers from ``loop`` (``final_<metric>``
    for every evaluation metric, ``best_<quality>``) and its host wall time (s, every
    session of it)."""
    return {
        **info,
        "rounds": rounds,
        **{f"final_{k}": v for k, v in loop.evaluation.items()},
        f"best_{info['quality_metric']}": loop.best,
        "sim_time_s": loop.t_now,
        "avg_round_latency_s": loop.lat_sum / rounds,
        "rounds_aggregated": loop.aggregated,
        "total_uplink_bits": loop.cum_up,
        "total_downlink_bits": loop.cum_dn,
        "wall_time_s": wall_time_s,
        **{f"mean_{k}": v / rounds for k, v in loop.wall.items()},
    }
