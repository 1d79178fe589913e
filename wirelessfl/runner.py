"""The round loop, written once: select, broadcast, train, decide, compress, upload,
aggregate, evaluate.

:class:`RoundLoop` is handed its components (cell, selector, aggregator, compressor,
controller, the training pool, the workbench for evaluation, the round sizes) and a
few :class:`LoopSettings`; it reads no scenario and no method's keys. Each round:

0. the selector picks the round's clients,
1. broadcast the global adapter (downlink time from its bits),
2. the selected clients train locally (real PyTorch, on the pool) -> compute time
   from FLOPs,
3. the controller allocates bandwidth and kept ranks from the round-start CSI,
4. each update is compressed to its payload,
5. the uplinks are simulated on the evolving channel (simpy),
6. the aggregator combines what arrived in time,
7. evaluate, record the round, update the latency queue.

The loop reports each round to its observers (as rows, :mod:`wirelessfl.records`)
and to an optional checkpoint callback. Simulated time comes only from models
(FLOPs, bits, rates), never from the host clock, so the same scenario and seed give
the same metrics on the same machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wirelessfl import records, seeding
from wirelessfl.compression import error_profiles
from wirelessfl.control import LatencyQueue, RoundContext
from wirelessfl.control.blocks import block_count
from wirelessfl.control.paths import uplink_paths
from wirelessfl.control.planning import UplinkModel
from wirelessfl.learning.adapter import State
from wirelessfl.learning.client import round_job
from wirelessfl.network.population import open_round
from wirelessfl.observers import Observer, RoundRecord
from wirelessfl.records import LoopState, PlayedRound
from wirelessfl.sim import RoundSchedule, simulate_round
from wirelessfl.sim.energy import round_energy_j


@dataclass(frozen=True)
class LoopSettings:
    """The numbers the loop needs from the scenario.

    Attributes
    ----------
    rounds, seed : int
    n_selected : int
        Clients selected per round.
    bandwidth_hz : float
        Uplink band B, Hz.
    latency_budget_s : float or None
        Long-term average latency budget (the queue's), seconds.
    deadline_s : float or None
        Per-round deadline, seconds.
    max_upload_s : float
        Upload (and broadcast) duration counted as an outage, seconds.
    eval_every : int
        Evaluate every this many rounds (and after the last).
    resource_block_hz : float or None
        OFDMA block width: controllers' bandwidths are rounded to whole blocks.
    expected_finish : bool
        Plan with sample paths of the gains (each upload's expected finish).
    """

    rounds: int
    seed: int
    n_selected: int
    bandwidth_hz: float
    latency_budget_s: float | None
    deadline_s: float | None
    max_upload_s: float
    eval_every: int
    resource_block_hz: float | None = None
    expected_finish: bool = False


class RoundLoop:
    """Plays rounds on the components it is handed.

    Parameters
    ----------
    settings : LoopSettings
    cell : Cell
    selector, aggregator, compressor, controller
        The run's plug-ins.
    pool : TrainingPool
        Where the clients train.
    bench : Workbench
        Evaluates adapters (the test set, personal test sets).
    sizes : RoundSizes
    """

    def __init__(self, settings: LoopSettings, cell: Any, selector: Any, aggregator: Any,
                 compressor: Any, controller: Any, pool: Any, bench: Any, sizes: Any) -> None:
        self.settings = settings
        self.cell, self.selector = cell, selector
        self.aggregator, self.compressor, self.controller = aggregator, compressor, controller
        self.pool, self.bench, self.sizes = pool, bench, sizes

    def run(self, loop: LoopState, observers: Sequence[Observer] = (),
            checkpoint: Callable[[LoopState], None] | None = None) -> LoopState:
        """Play the rounds after ``loop.round``, reporting each to ``observers`` and then
        to ``checkpoint``; return the final state (host time in ``wall_time_s``)."""
        s = self.settings
        wall0, wall_before = time.perf_counter(), loop.wall_time_s
        queue = LatencyQueue(s.latency_budget_s)
        queue.value = loop.queue
        for t in range(loop.round + 1, s.rounds):
            r = self.one_round(t, loop.state, loop.t_now, queue.value, loop.sampling)
            latency = r.outcome.end_s - loop.t_now
            loop.round, loop.state, loop.t_now = t, r.state, r.outcome.end_s
            loop.lat_sum += latency
            loop.cum_up += r.uplink_bits
            loop.cum_dn += r.downlink_bits
            for k, v in r.timings.items():
                loop.wall[k] = loop.wall.get(k, 0.0) + v
            loop.aggregated += int(r.outcome.received.any())
            q_before = queue.value
            loop.queue = queue.update(latency)
            evaluated = t % s.eval_every == 0 or t == s.rounds - 1
            task = self.bench.task
            personal = None
            if self.aggregator.personalized:
                personal = (f"personal_{task.quality}", float("nan"))
            if evaluated:
                loop.evaluation = self.bench.evaluate(loop.state)
                quality = loop.evaluation[task.quality]
                if np.isnan(loop.best) or task.better(quality, loop.best):
                    loop.best = quality
                if personal is not None:
                    personal = (personal[0], self.bench.personal_quality(
                        loop.state, self.aggregator.personal_state))
            record = RoundRecord(t, records.metrics_row(r, loop, latency, q_before, evaluated,
                                                        self.bench.metrics, personal),
                                 records.client_rows(t, r),
                                 records.round_events(t, r))
            for o in observers:
                o.on_round(record)
            loop.wall_time_s = wall_before + time.perf_counter() - wall0
            if checkpoint is not None:
                checkpoint(loop)
        loop.wall_time_s = wall_before + time.perf_counter() - wall0
        return loop

    def one_round(self, t: int, state: State, t_now: float, queue_s: float,
                  sampling: np.random.Generator) -> PlayedRound:
        """Round ``t`` from ``t_now``: select, broadcast, train, decide, compress,
        upload, aggregate. Records nothing; the caller turns the result into rows."""
        s, cell = self.settings, self.cell
        cell.move_to(t_now)
        # nothing earlier than this round's CSI is asked again
        cell.forget_before(t_now - cell.csi_delay_s)
        rl = open_round(cell, t, t_now, s.n_selected, self.selector, sampling)
        sel, rc, links = rl.clients, rl.cell, rl.links
        dl_bits = self.sizes.broadcast_bits(self.aggregator, state)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            dl_s = float(rc.broadcast_time_s(dl_bits, links, t_now))
        # a broadcast longer than the outage rule allows is an outage (the timeline drops
        # everyone); the controller plans with the time the server gives up at
        dl_plan = dl_s if dl_s <= s.max_upload_s else s.max_upload_s
        updates = self.train(t, state, sel)
        compute_s, fading = self.sizes.compute_s[sel], rl.csi.mean(axis=1)
        faulty = np.array([not u.finite for u in updates], dtype=bool)
        c_large = rc.uplink_c_hz(links)
        uplink = UplinkModel(c_large, rc.uplink_law(links, t_now, rl.csi))
        band_hz = s.bandwidth_hz if s.resource_block_hz is None else (  # the usable band
            block_count(s.bandwidth_hz, s.resource_block_hz) * s.resource_block_hz)
        if s.expected_finish:  # the planner's sample paths of the gains
            uplink.paths = uplink_paths(rc, uplink, links, t_now, rl.csi,
                                        dl_plan + compute_s, self.sizes.full_bits[sel],
                                        band_hz, s.max_upload_s,
                                        seeding.rng(s.seed, "planning", t))
        ctx = RoundContext(t, sel, rc.uplink_c_hz(links, fading), dl_plan, compute_s,
                           self.sizes.full_bits[sel], self.sizes.ranks[sel], band_hz,
                           s.latency_budget_s, queue_s,
                           weights=np.array([u.num_samples for u in updates], dtype=float),
                           bits=self.sizes.bits_table[sel],
                           eps=error_profiles(self.compressor, updates, state,
                                              int(self.sizes.ranks.max())),
                           uplink=uplink)
        alloc = self.controller.online(ctx)
        if s.resource_block_hz is not None:
            alloc = self.controller.to_blocks(ctx, alloc, s.resource_block_hz)
        events = [{"round": t, **e} for e in alloc.events]
        keep = alloc.keep_ranks
        sends = np.ones(len(sel), dtype=bool) if keep is None else np.asarray(keep) > 0
        sends &= ~faulty  # a NaN or infinite update is never sent
        packets = [
            self.compressor.compress(u, state, self.sizes.bits_per_value,
                                     None if keep is None else int(keep[i]),
                                     seeding.rng(s.seed, "compressor", int(u.client_id), t))
            if sends[i] else None
            for i, u in enumerate(updates)
        ]
        bits = np.array([p.payload_bits if p is not None else 0 for p in packets], dtype=float)
        schedule = RoundSchedule(t_now, links, dl_s, compute_s, bits, alloc.bandwidth_hz, c_large,
                                 s.deadline_s, s.max_upload_s, scheduled=sends, clients=sel)
        out = simulate_round(schedule, rc.channel)
        for i in np.flatnonzero(faulty):
            out.drop_reason[i] = "non_finite_update"
        received = [p.update for p, ok in zip(packets, out.received, strict=True) if ok]
        metrics: dict[str, float] = {}
        if uplink.paths is not None and sends.any():  # the round's expected end
            idx = np.flatnonzero(sends)
            metrics["planned_round_latency_s"] = uplink.paths.take(idx).expected_latest_s(
                np.asarray(alloc.bandwidth_hz)[idx], bits[idx], ctx.start_s[idx])
        if received:
            state, agg_metrics = self.aggregator.aggregate(state, received)
            metrics.update(agg_metrics)
        else:
            events.append({"round": t, "event": "no_aggregation",
                           "message": "no update arrived: the global adapter is unchanged"})
        sent = [p for p in packets if p is not None]
        for key in sent[0].metrics if sent else {}:
            metrics[key] = float(np.mean([p.metrics[key] for p in sent]))
        metrics.update(alloc.metrics)
        energy = round_energy_j(schedule, out, rc.tx_power_w, self.sizes.joules_per_flop[sel],
                                self.sizes.round_flops)
        return PlayedRound(state, ctx, alloc, updates, packets, schedule, out, dl_bits, dl_s,
                           int(bits[out.received].sum()), energy, metrics, events,
                           alloc.timings, rl.distance_m, rl.gain_db)

    def train(self, t: int, state: State, sel: np.ndarray) -> list[Any]:
        """The selected clients' local rounds: start states from the aggregator (here),
        training on the pool; updates in ``sel``'s order."""
        jobs = []
        for k in sel:
            k, r = int(k), int(self.sizes.ranks[k])
            gen = torch.Generator().manual_seed(seeding.int_seed(self.settings.seed, "client",
                                                                 k, t, 2))
            jobs.append(round_job(self.settings.seed, k, t,
                                  self.aggregator.client_state(state, k, r, gen), r))
        return self.pool.train(jobs)
