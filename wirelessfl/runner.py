"""The one round loop: wires the network, learning, compression and control together.

``Simulation`` builds every component from a :class:`Scenario` (before anything is
written), then :meth:`Simulation.run` plays the rounds and reports each one to its
observers (:mod:`wirelessfl.observers`: results folder, memory, progress, logging):

0. the selector picks the round's clients,
1. broadcast the global adapter (downlink time from its bits),
2. the selected clients train locally (real PyTorch) -> compute time from FLOPs,
3. the controller allocates bandwidth and kept ranks from the round-start CSI,
4. each update is compressed to its payload,
5. the uplinks are played on the evolving channel (simpy),
6. the aggregator combines what arrived in time,
7. evaluate, log the round, update the latency queue.

Simulated time comes only from models (FLOPs, bits, rates), never from the host
clock, so the same scenario and seed give the same metrics on the same machine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wirelessfl import build, seeding
from wirelessfl.control import Allocation, LatencyQueue, Preparation, RoundContext
from wirelessfl.control.planning import UplinkModel
from wirelessfl.errors import PluginError, ScenarioError
from wirelessfl.learning.adapter import State, get_state, numels, set_state
from wirelessfl.learning.batched import clients_per_pass, probe
from wirelessfl.learning.client import LocalJob, LocalTrainer
from wirelessfl.learning.data import (
    DATASETS,
    TextData,
    TokenData,
    cached_tokenize,
    stratified_split,
)
from wirelessfl.learning.flops import training_step_flops
from wirelessfl.learning.lora import lora_sites, rank_grad_mask
from wirelessfl.learning.models import (
    MODELS,
    build_base,
    linear_module_names,
    missing_targets,
    wrap_lora,
)
from wirelessfl.learning.partition import dirichlet_partition, iid_partition
from wirelessfl.observers import Observer, RoundRecord, RunEnd, RunStart
from wirelessfl.results import package_versions
from wirelessfl.scenario import Scenario
from wirelessfl.selection import SelectionView
from wirelessfl.sim import RoundOutcome, RoundPlan, play_round


def _finite_mean(values: list[float]) -> float:
    """Mean of the finite values, NaN when there are none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from wirelessfl.errors import ScenarioError

        raise ScenarioError("compute.device", "cuda was asked for but no GPU is available; "
                            "use auto or cpu")
    return torch.device(name)


def load_data(sc: Scenario) -> TokenData:
    """The scenario's data set, tokenised to ``model.max_length`` (cached on disk).

    Raises
    ------
    PluginError
        A data set that cannot be read (naming ``data.options``) or a model without
        a tokenizer (naming ``model.options``).
    """
    cls = DATASETS.get(sc.data.name)
    source = build.resolve(DATASETS, "data.name", sc.data.name, cls.options(sc.data),
                           "data.options")
    try:
        out = source.load(seeding.rng(sc.seed, "data"), sc.model.max_length)
    except ValueError as err:
        raise PluginError("data.options", str(err)) from None
    if isinstance(out, TextData):
        model = build.resolve(MODELS, "model.name", sc.model.name, sc.model.options,
                              "model.options")
        try:
            tokenizer = model.tokenizer()
        except ValueError as err:
            raise PluginError("model.options", str(err)) from None
        out = cached_tokenize(out, tokenizer, sc.model.max_length,
                              f"{source.fingerprint()}|{model.identity()}")
    counts = np.bincount(out.labels.numpy())
    if sum(int(round(sc.data.test_fraction * n)) for n in counts) < 1:
        raise ScenarioError("data.test_fraction", f"{sc.data.test_fraction} of {len(out)} "
                            "examples leaves the test set empty; raise it")
    return out


@dataclass
class ClientShards:
    """Training shards per client, the held-out test indices, and per-client test sets.

    ``client_test[k]`` is drawn from the test set with client k's training label
    distribution (for personalised methods' accuracy).
    """

    train: list[np.ndarray]
    test: np.ndarray
    client_test: list[np.ndarray]


def client_test_sets(test: np.ndarray, labels: np.ndarray, shards: list[np.ndarray],
                     size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per-client test sets that follow each client's training label distribution.

    For client k, ``size`` test examples (at most the test set's size): labels drawn
    with k's training label frequencies, then an example of that label drawn
    uniformly from the test set (with replacement across clients, not within one).
    """
    classes = np.unique(labels)
    pools = {c: test[labels[test] == c] for c in classes}
    out = []
    for shard in shards:
        freq = np.array([np.sum(labels[shard] == c) for c in classes], dtype=float)
        counts = rng.multinomial(min(size, len(test)), freq / freq.sum())
        picks = [rng.choice(pools[c], size=min(n, len(pools[c])), replace=False)
                 for c, n in zip(classes, counts, strict=True) if n > 0]
        out.append(np.sort(np.concatenate(picks)) if picks else test[:1])
    return out


def split_data(sc: Scenario, data: TokenData) -> ClientShards:
    labels = data.labels.numpy()
    train, test = stratified_split(labels, sc.data.test_fraction, seeding.rng(sc.seed, "data", 1))
    part = sc.data.partition
    prng = seeding.rng(sc.seed, "partition")
    if part.scheme == "iid":
        shards = iid_partition(train, sc.clients.count, prng)
    else:
        shards = dirichlet_partition(train, labels, sc.clients.count, part.alpha, prng,
                                     part.min_samples)
    personal = client_test_sets(test, labels, shards, sc.eval.personal_examples,
                                seeding.rng(sc.seed, "data", 2))
    return ClientShards(shards, test, personal)


@dataclass
class TrainJob:
    """One client's local round to train: who, when, its rank and its start state."""

    client: int
    round: int
    rank: int
    start: State


@dataclass
class PlayedRound:
    """Everything one round produced: the new global state and what is logged about it.

    ``metrics`` merges the aggregator's, the compressors' (mean over clients) and the
    controller's per-round numbers; ``timings`` the controller's wall-clock times (s);
    ``events`` what goes to ``events.jsonl`` besides drops and the timeline.
    """

    state: State
    ctx: RoundContext
    alloc: Allocation
    updates: list[Any]
    packets: list[Any]
    plan: RoundPlan
    outcome: RoundOutcome
    downlink_bits: int
    downlink_s: float
    uplink_bits: int
    energy: tuple[np.ndarray, np.ndarray]
    metrics: dict[str, float]
    timings: dict[str, float]
    events: list[dict[str, Any]]


class Simulation:
    """A scenario, built and ready to run.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario.
    """

    pool: Any = None  # the training pool of compute.backend (None: this process)

    def __init__(self, scenario: Scenario, preparation: Preparation | None = None) -> None:
        sc = self.sc = scenario
        self.preparation = preparation if preparation is not None else Preparation(sc)
        build.check_learning(sc)
        self.profiles = build.device_profiles(sc)
        self.ranks = np.array(build.client_ranks(sc), dtype=int)
        self.cell = build.build_cell(sc)
        self.aggregator, self.compressor, self.controller = build.build_methods(sc)
        self.selector = build.build_selector(sc)
        self.device = resolve_device(sc.compute.device)
        if sc.compute.torch_threads:
            torch.set_num_threads(sc.compute.torch_threads)

        self.data = load_data(sc)
        self.shards = split_data(sc, self.data)
        self.base_recipe = {"name": sc.model.name, "options": sc.model.options,
                            "num_labels": self.data.num_labels,
                            "vocab_size": self.data.vocab_size,
                            "max_length": sc.model.max_length, "pooling": sc.model.pooling,
                            "seed": seeding.int_seed(sc.seed, "torch_init", 0)}
        base = build_base(**self.base_recipe)
        lora = sc.model.lora
        missing = missing_targets(base.encoder, lora.target_modules)
        if missing:
            raise ScenarioError("model.lora.target_modules",
                                f"{sc.model.name} has no module {missing[0]!r}; its linear "
                                f"modules: {', '.join(linear_module_names(base))}")
        self.alloc_rank = int(self.ranks.max())  # every client's tensors have this many ranks
        self.model = wrap_lora(base, self.alloc_rank, lora.alpha, lora.dropout,
                               lora.target_modules,
                               seeding.int_seed(sc.seed, "torch_init", 1)).to(self.device)
        for name, p in self.model.named_parameters():
            if p.requires_grad and self.aggregator.frozen(name):
                p.requires_grad_(False)
        self.trainer = LocalTrainer(self.model, self.data, self.device, sc.clients.local_steps,
                                    sc.clients.batch_size, sc.clients.learning_rate,
                                    sc.clients.weight_decay,
                                    regularizer=self.compressor.regularizer())
        self.initial_state = get_state(self.model)
        self.shapes = {n: tuple(t.shape) for n, t in self.initial_state.items()}
        self.numels = numels(self.initial_state)
        self.sites = lora_sites(self.model)
        self.original_bases = ({s.prefix: s.base.detach().clone() for s in self.sites}
                               if self.aggregator.merges_into_base else {})
        self.aggregator.setup(self.sites, self.initial_state)
        self._masks = {r: rank_grad_mask(self.model, self.sites, r)
                       for r in set(self.ranks.tolist()) if r < self.alloc_rank}
        self.step_flops = training_step_flops(self.model, sc.clients.batch_size,
                                              sc.model.max_length, self.data.vocab_size,
                                              self.device)
        set_state(self.model, self.initial_state)
        self.batch_note = self._batching()

    def _batching(self) -> str | None:
        """Decide batched training (``compute.batch_clients``) and its chunk size.

        The batched forward is checked on this very model (:func:`probe`); a model
        it cannot batch exactly trains one client after another, and the returned
        note says why (logged, and kept in ``summary.json``).
        """
        sc = self.sc
        self.clients_per_pass = 1
        if not sc.compute.batch_clients:
            return None
        why = probe(self.model, self.initial_state, self.data.input_ids,
                    self.data.attention_mask)
        if why:
            note = f"clients train one by one: {why}"
            logging.getLogger("wirelessfl").warning(note)
            return note
        self.clients_per_pass = clients_per_pass(self.model, sc.clients.batch_size,
                                                 sc.model.max_length, self.device,
                                                 sc.compute.max_batched_clients)
        return None

    # ------------------------------------------------------------------ planning numbers

    @property
    def round_flops(self) -> float:
        """Training FLOPs of one client's local round."""
        return float(self.step_flops * self.sc.clients.local_steps)

    @property
    def compute_s(self) -> np.ndarray:
        """Local computation time of one round per client, on its device profile, s."""
        return np.array([p.compute_time_s(self.round_flops) for p in self.profiles])

    @property
    def full_bits(self) -> np.ndarray:
        """Uplink payload per client at its full rank r_k, bits (a column of the table)."""
        return self.bits_table[np.arange(len(self.ranks)), self.ranks]

    @property
    def bits_table(self) -> np.ndarray:
        """Payload of client k sending m ranks, ``[k, m]`` for m = 0..R, bits (n, R + 1).

        Entries with m above the client's rank repeat its full payload.
        """
        q = self.sc.radio.bits_per_value
        big_r = self.alloc_rank
        return np.array([[self.compressor.payload_bits(self.shapes, int(r), q, min(m, int(r)))
                          for m in range(big_r + 1)] for r in self.ranks], dtype=float)

    def broadcast_bits(self, state: State) -> int:
        """Downlink payload of the global adapter this round, bits."""
        return self.aggregator.downlink_numels(state) * self.sc.radio.bits_per_value

    def plan_summary(self) -> dict[str, Any]:
        """What ``wirelessfl validate`` prints: sizes and the expected round latency."""
        sc = self.sc
        links = np.arange(sc.clients.count)
        dl = self.cell.broadcast_time_s(self.broadcast_bits(self.initial_state), links, 0.0)
        full = self.full_bits
        return {
            "clients": sc.clients.count,
            "clients_per_round": self.n_selected,
            "train_examples": int(sum(len(s) for s in self.shards.train)),
            "test_examples": int(len(self.shards.test)),
            "trainable_values": int(sum(self.numels.values())),
            "lora_ranks": sorted(set(self.ranks.tolist())),
            "uplink_bits_per_client_full_rank": int(full.max()),
            "uplink_bits_per_round_full_rank": int(full.mean() * self.n_selected),
            "training_flops_per_client_round": self.round_flops,
            "compute_s_per_round": float(self.compute_s.max()),
            "expected_round_latency_s": build.expected_round_latency_s(
                self.cell, self.compute_s, full, dl, sc.sim.expected_latency_rounds,
                seed=sc.seed),
            "median_client_distance_m": float(np.median(self.cell.distance_m)),
        }

    def smallest_latency_s(self) -> float:
        """A lower bound of the expected round latency whatever the controller decides.

        Every client sends its least (one rank when the compressor sparsifies, else
        everything), the planner's law is the channel's stationary one, and the
        bandwidth is min-max over all clients (full participation) or, with partial
        participation, the whole band for each client alone, of which the
        ``n_selected``-th smallest counts. Seconds.
        """
        sc = self.sc
        k = sc.clients.count
        links = np.arange(k)
        dl = self.cell.broadcast_time_s(self.broadcast_bits(self.initial_state), links, 0.0)
        bits = self.bits_table[:, 1] if self.compressor.sparsifies else self.full_bits
        model = UplinkModel(self.cell.uplink_c_hz(links),
                            self.cell.channel.stationary_law(k, 0.0))
        a = dl + self.compute_s
        if self.n_selected == k:
            return model.minmax(a, bits, sc.radio.uplink_bandwidth_hz)[0]
        alone = model.finish_s(np.full(k, sc.radio.uplink_bandwidth_hz), bits, a)
        return float(np.sort(alone)[self.n_selected - 1])

    def budget_warning(self) -> str | None:
        """One line when the latency budget is below :meth:`smallest_latency_s`, else None."""
        budget = self.sc.controller.latency_budget_s
        if budget is None or not self.controller.needs_budget:
            return None
        low = self.smallest_latency_s()
        if budget >= low:
            return None
        return (f"controller.latency_budget_s: {budget:.4g} s is below the smallest expected "
                f"round latency ({low:.4g} s, every client sending the least it can); the run "
                "goes on, the queue grows and the controller sends the least every round")

    @property
    def n_selected(self) -> int:
        k = self.sc.clients.count
        if not self.selector.uses_fraction:
            return k
        return max(1, int(round(self.sc.clients.fraction * k)))

    # ------------------------------------------------------------------ the round loop

    def select(self, t: int, t_now: float, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
        """The round's clients (sorted) and every client's CSI fading estimate (K,)."""
        k = self.sc.clients.count
        fading = self.cell.estimated_fading(t_now)  # once a round: the CSI stream is shared
        view = SelectionView(t, k, self.n_selected, np.asarray(self.cell.gain_db, dtype=float),
                             fading)
        sel = np.asarray(self.selector.select(view, rng), dtype=int)
        if (sel.ndim != 1 or len(sel) == 0 or len(np.unique(sel)) != len(sel)
                or sel.min() < 0 or sel.max() >= k):
            raise PluginError("clients.selection", f"selector {self.selector.name!r} returned "
                              f"{sel.tolist()[:8]}: distinct client indices in [0, {k}) needed")
        return np.sort(sel), fading

    def run(self, observers: Sequence[Observer] = (),
            checkpoint: Callable[[dict[str, Any]], None] | None = None,
            resume: dict[str, Any] | None = None) -> dict[str, Any]:
        """Play every round, reporting each to ``observers``; return the summary.

        Parameters
        ----------
        observers : sequence of Observer
        checkpoint : callable, optional
            Called after every round (after the observers) with the loop's state
            (:mod:`wirelessfl.checkpoint`).
        resume : dict, optional
            A checkpoint read back: the components are restored and the loop goes on
            from the round after it.
        """
        sc = self.sc
        wall0 = time.perf_counter()
        state: State = {n: t.clone() for n, t in self.initial_state.items()}
        queue = LatencyQueue(sc.controller.latency_budget_s)
        sampling = seeding.rng(sc.seed, "sampling")
        t_now, cum_up, cum_dn, lat_sum = 0.0, 0, 0, 0.0
        acc, loss = float("nan"), float("nan")
        best_acc = float("nan")
        wall: dict[str, float] = {}
        aggregated, first, wall_before = 0, 0, 0.0
        if resume is not None:
            from wirelessfl import checkpoint as ckpt

            loop = ckpt.restore(self, resume)
            state, queue.value, sampling = loop["state"], loop["queue"], loop["sampling"]
            t_now, cum_up, cum_dn, lat_sum = (loop["t_now"], loop["cum_up"], loop["cum_dn"],
                                              loop["lat_sum"])
            acc, loss, best_acc = loop["acc"], loop["loss"], loop["best_acc"]
            wall, aggregated = dict(loop["wall"]), loop["aggregated"]
            first, wall_before = loop["round"] + 1, loop["wall_time_s"]
        start = RunStart(sc, dict(self.preparation.tables),
                         resumed_at=first if resume is not None else None)
        warning = self.budget_warning()
        if warning:
            start.events.append({"round": -1, "event": "warning", "message": warning})
        for o in observers:
            o.on_start(start)
        self.open_pool()  # closed below, or by the caller (close()) when a round raises
        for t in range(first, sc.rounds):
            r = self._play_round(t, state, t_now, queue.value, sampling)
            state = r.state
            latency = r.outcome.end_s - t_now
            t_now = r.outcome.end_s
            lat_sum += latency
            cum_up += r.uplink_bits
            cum_dn += r.downlink_bits
            for k, v in r.timings.items():
                wall[k] = wall.get(k, 0.0) + v
            aggregated += int(r.outcome.received.any())
            q_before = queue.value
            queue.update(latency)
            evaluated = t % sc.eval.every == 0 or t == sc.rounds - 1
            personal = float("nan")
            if evaluated:
                acc, loss = self.trainer.evaluate(state, self.shards.test, sc.eval.batch_size)
                best_acc = acc if np.isnan(best_acc) else max(best_acc, acc)
                if self.aggregator.personalized:
                    personal = self.personal_accuracy(state)
            row = {
                "round": t,
                "sim_time_s": t_now,
                "round_latency_s": latency,
                "planned_latency_s": float(np.max(r.alloc.planned_latency_s)),
                "avg_latency_s": lat_sum / (t + 1),
                "downlink_s": r.downlink_s,
                "uplink_bits": r.uplink_bits,
                "cum_uplink_bits": cum_up,
                "downlink_bits": r.downlink_bits,
                "cum_downlink_bits": cum_dn,
                "selected": len(r.plan.links),
                "received": int(r.outcome.received.sum()),
                "dropped": int((~r.outcome.received).sum()),
                "queue_s": q_before,
                "tx_energy_j": float(r.energy[0].sum()),
                "compute_energy_j": float(r.energy[1].sum()),
                "train_loss": _finite_mean([u.train_loss for u in r.updates]),
                "accuracy": acc if evaluated else float("nan"),
                "loss": loss if evaluated else float("nan"),
                **({"personal_accuracy": personal} if self.aggregator.personalized else {}),
                **r.metrics,
            }
            record = RoundRecord(t, row, self._client_rows(t, r.plan, r.updates, r.packets,
                                                           r.ctx, r.alloc, r.outcome,
                                                           r.energy),
                                 self._round_events(t, r))
            for o in observers:
                o.on_round(record)
            if checkpoint is not None:
                checkpoint({"round": t, "state": state, "queue": queue.value,
                            "sampling": sampling, "t_now": t_now, "cum_up": cum_up,
                            "cum_dn": cum_dn, "lat_sum": lat_sum, "acc": acc, "loss": loss,
                            "best_acc": best_acc, "wall": wall, "aggregated": aggregated,
                            "wall_time_s": wall_before + time.perf_counter() - wall0})

        self.close()
        set_state(self.model, state)
        summary = {
            "name": sc.name,
            "seed": sc.seed,
            "rounds": sc.rounds,
            "final_accuracy": acc,
            "best_accuracy": best_acc,
            "final_loss": loss,
            "sim_time_s": t_now,
            "avg_round_latency_s": lat_sum / sc.rounds,
            "rounds_aggregated": aggregated,
            "latency_budget_s": sc.controller.latency_budget_s,
            "total_uplink_bits": cum_up,
            "total_downlink_bits": cum_dn,
            "method": sc.method.model_dump(),
            "base_model": self.base_recipe,
            "lora_rank": int(self.alloc_rank),
            "label_names": self.data.label_names,
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
            "clients_per_pass": self.clients_per_pass,
            **({"batching_note": self.batch_note} if self.batch_note else {}),
            "wall_time_s": wall_before + time.perf_counter() - wall0,
            **{f"mean_{k}": v / sc.rounds for k, v in wall.items()},
            "versions": package_versions(),
        }
        end = RunEnd(summary, state, lambda path: self.save_adapter(state, path))
        for o in observers:
            o.on_end(end)
        return summary

    def _play_round(self, t: int, state: State, t_now: float, queue_s: float,
                    sampling: np.random.Generator) -> PlayedRound:
        """One round from ``t_now``: select, broadcast, train, decide, compress, upload,
        aggregate. Logs nothing; the caller turns the result into rows."""
        sc = self.sc
        self.cell.move_to(t_now)
        # nothing earlier than this round's CSI is asked again
        self.cell.channel.forget_before(t_now - self.cell.csi_delay_s)
        sel, fading_all = self.select(t, t_now, sampling)
        dl_bits = self.broadcast_bits(state)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            dl_s = float(self.cell.broadcast_time_s(dl_bits, sel, t_now))
        # a broadcast longer than the outage rule allows is an outage (the timeline drops
        # everyone); the controller plans with the time the server gives up at
        dl_plan = dl_s if dl_s <= sc.sim.max_upload_s else sc.sim.max_upload_s
        updates = self._train_round(state, sel, t)
        compute_s = self.compute_s[sel]
        fading = fading_all[sel]
        faulty = np.array([not u.finite for u in updates], dtype=bool)
        c_large = self.cell.uplink_c_hz(sel)
        uplink = UplinkModel(c_large, self.cell.uplink_law(sel, t_now, fading))
        ctx = RoundContext(t, sel, self.cell.uplink_c_hz(sel, fading), dl_plan, compute_s,
                           self.full_bits[sel], self.ranks[sel], sc.radio.uplink_bandwidth_hz,
                           sc.controller.latency_budget_s, queue_s,
                           weights=np.array([u.num_samples for u in updates], dtype=float),
                           bits=self.bits_table[sel], eps=self._error_profiles(updates, state),
                           uplink=uplink)
        alloc = self.controller.online(ctx)
        timings = {k: alloc.info.pop(k) for k in list(alloc.info) if k.endswith("_wall_s")}
        events = []
        if alloc.info.get("tsfa_fallback") or alloc.info.get("tsfa_budget_unreachable"):
            events.append({"round": t, "event": "controller_fallback",
                           **{k: v for k, v in alloc.info.items() if k.startswith("tsfa_")}})
        keep = alloc.keep_ranks
        sends = np.ones(len(sel), dtype=bool) if keep is None else np.asarray(keep) > 0
        sends &= ~faulty  # a NaN or infinite update is never sent
        packets = [
            self.compressor.compress(u, state, sc.radio.bits_per_value,
                                     None if keep is None else int(keep[i]),
                                     seeding.rng(sc.seed, "compressor", int(u.client_id), t))
            if sends[i] else None
            for i, u in enumerate(updates)
        ]
        bits = np.array([p.payload_bits if p is not None else 0 for p in packets], dtype=float)
        plan = RoundPlan(t_now, sel, dl_s, compute_s, bits, alloc.bandwidth_hz, c_large,
                         sc.sim.deadline_s, sc.sim.max_upload_s, scheduled=sends)
        out = play_round(plan, self.cell.channel)
        for i in np.flatnonzero(faulty):
            out.drop_reason[i] = "non_finite_update"
        received = [p.update for p, ok in zip(packets, out.received, strict=True) if ok]
        metrics: dict[str, float] = {}
        if received:
            state, agg_metrics = self.aggregator.aggregate(state, received)
            metrics.update(agg_metrics)
        else:
            events.append({"round": t, "event": "no_aggregation",
                           "message": "no update arrived: the global adapter is unchanged"})
        sent = [p for p in packets if p is not None]
        for key in sent[0].metrics if sent else {}:
            metrics[key] = float(np.mean([p.metrics[key] for p in sent]))
        metrics.update(alloc.info)
        return PlayedRound(state, ctx, alloc, updates, packets, plan, out, dl_bits, dl_s,
                           int(bits[out.received].sum()), self._energy_j(plan, out),
                           metrics, timings, events)

    @staticmethod
    def _round_events(t: int, r: PlayedRound) -> list[dict[str, Any]]:
        """The round's ``events.jsonl`` records: its own, drops, timeline, timings."""
        events = list(r.events)
        for i, reason in enumerate(r.outcome.drop_reason):
            if reason:
                events.append({"round": t, "event": "drop", "client": int(r.plan.links[i]),
                               "reason": reason})
        events.append({"round": t, "event": "timeline", "phases": r.outcome.events})
        if r.timings:
            events.append({"round": t, "event": "timing", **r.timings})
        return events

    def _error_profiles(self, updates, state: State) -> np.ndarray | None:
        """Reported ``eps_k(m)`` per client, (n, R + 1); None if nothing is sparsified.

        A client whose update is not finite reports no error (it will not send).
        """
        if not self.compressor.sparsifies:
            return None
        out = np.zeros((len(updates), self.alloc_rank + 1))
        for i, u in enumerate(updates):
            if not u.finite:
                continue
            e = self.compressor.error_profile(u, state)
            out[i, : len(e)] = e  # ranks above the client's own lose nothing
        return out

    def personal_accuracy(self, state: State) -> float:
        """Mean over clients of their own adapter's accuracy on their own test set."""
        accs = []
        for k, test in enumerate(self.shards.client_test):
            own = self.aggregator.personal_state(k)
            accs.append(self.trainer.evaluate(own if own is not None else state, test,
                                              self.sc.eval.batch_size)[0])
        return float(np.mean(accs))

    def _train_round(self, state: State, sel: np.ndarray, t: int) -> list[Any]:
        """The selected clients' local rounds: start states from the aggregator (here),
        training on the pool (this process, or Ray actors); updates in ``sel``'s order.

        The jobs are cut into groups of ``clients_per_pass`` in selection order, the
        same groups whatever the pool, so where a group trains never changes a result.
        """
        jobs = []
        for k in sel:
            k, r = int(k), int(self.ranks[k])
            gen = torch.Generator().manual_seed(seeding.int_seed(self.sc.seed, "client", k,
                                                                 t, 2))
            jobs.append(TrainJob(k, t, r, self.aggregator.client_state(state, k, r, gen)))
        n = self.clients_per_pass
        groups = [jobs[i : i + n] for i in range(0, len(jobs), n)]
        if self.pool is None:
            return [u for g in groups for u in self.train_group(g)]
        return self.pool.train(groups)

    def train_group(self, jobs: list[TrainJob]) -> list[Any]:
        """Train a group of clients: together when batching is on, else one by one."""
        if self.clients_per_pass == 1 or len(jobs) == 1:
            return [self.train_job(j) for j in jobs]
        seed = self.sc.seed
        local = [LocalJob(j.client, self.shards.train[j.client], j.start,
                          seeding.rng(seed, "client", j.client, j.round), j.rank)
                 for j in jobs]
        return self.trainer.train_many(
            local, seeding.int_seed(seed, "client", jobs[0].client, jobs[0].round, 3))

    def train_job(self, job: TrainJob) -> Any:
        """Train one client from its start state (seeded by client and round)."""
        seed, k, t = self.sc.seed, job.client, job.round
        return self.trainer.train(k, self.shards.train[k], job.start,
                                  seeding.rng(seed, "client", k, t),
                                  seeding.int_seed(seed, "client", k, t, 1), rank=job.rank,
                                  grad_mask=self._masks.get(job.rank))

    def open_pool(self) -> None:
        """Start the training pool the scenario asks for (``compute.backend``)."""
        if self.sc.compute.backend == "ray" and self.pool is None:
            from wirelessfl.backends.ray import RayPool

            self.pool = RayPool(self, self.sc.compute.ray_address, self.sc.compute.ray_actors)

    def close(self) -> None:
        """Stop the training pool, if any (and a Ray this process started)."""
        if self.pool is not None:
            from wirelessfl.backends import ray as ray_backend

            self.pool.close()
            self.pool = None
            ray_backend.stop()

    def save_adapter(self, state: State, path: Path) -> None:
        """Write the final global model as a peft adapter over the pristine base.

        Methods that merge into the base weights (FLoRA, FLoRIST) are exported as the
        exact SVD of each site's total weight change (numerical rank), zero-padded to
        a common rank with scaling 1; the others are saved as they are.
        """
        if not self.aggregator.merges_into_base:
            self.model.save_pretrained(str(path))
            return
        from wirelessfl.learning.export import export_merged

        sc = self.sc
        deltas = {s.prefix: (s.base.detach().double().cpu()
                             - self.original_bases[s.prefix].double().cpu()
                             + s.delta(state)) for s in self.sites}
        export_merged(build_base(**self.base_recipe), deltas, state,
                      sc.model.lora.target_modules, path)

    def _energy_j(self, plan: RoundPlan, out) -> tuple[np.ndarray, np.ndarray]:
        """Transmit and compute energy per client this round, joules, shapes (n,), (n,).

        Transmit: ``p * (time on the air)``; a dropped client spends energy until it
        is cut off. Compute: ``J/FLOP * FLOPs`` for the share of the local work done
        before the round ended.
        """
        on_air = np.where(np.isnan(out.finish_s), out.end_s, out.finish_s) - out.upload_start_s
        tx = self.cell.tx_power_w * np.nan_to_num(np.maximum(on_air, 0.0))
        dl_end = plan.start_s + plan.downlink_s
        with np.errstate(divide="ignore", invalid="ignore"):
            done = np.clip((out.end_s - dl_end) / plan.compute_s, 0.0, 1.0)
        done = np.where(plan.compute_s > 0, done, 1.0)
        j_per_flop = np.array([self.profiles[k].joules_per_flop for k in plan.links])
        comp = j_per_flop * self.round_flops * done
        return tx, comp

    def _client_rows(self, t, plan, updates, packets, ctx, alloc, out,
                     energy) -> list[dict[str, Any]]:
        rows = []
        for i, k in enumerate(plan.links):
            b = float(alloc.bandwidth_hz[i])
            rows.append({
                "round": t,
                "client": int(k),
                "num_samples": updates[i].num_samples,
                "train_loss": updates[i].train_loss,
                "distance_m": float(self.cell.distance_m[k]),
                "gain_db": float(self.cell.gain_db[k]),
                "snr_db": float(10 * np.log10(ctx.c_hz[i] / b)) if b > 0 else float("nan"),
                "bandwidth_hz": b,
                "rank": int(ctx.ranks[i]),
                "keep_ranks": (int(ctx.ranks[i]) if alloc.keep_ranks is None
                               else int(alloc.keep_ranks[i])),
                "payload_bits": packets[i].payload_bits if packets[i] is not None else 0,
                "compute_s": float(ctx.compute_s[i]),
                "planned_latency_s": float(alloc.planned_latency_s[i]),
                "planned_upload_s": float(alloc.planned_latency_s[i] - ctx.downlink_s
                                          - ctx.compute_s[i]),
                "realised_upload_s": float(out.upload_s[i]) if out.received[i]
                else float("nan"),
                "realised_latency_s": float(out.finish_s[i] - plan.start_s)
                if out.received[i] else float("nan"),
                "tx_energy_j": float(energy[0][i]),
                "compute_energy_j": float(energy[1][i]),
                "received": bool(out.received[i]),
                "drop_reason": out.drop_reason[i],
                **updates[i].metrics,
                **(packets[i].metrics if packets[i] is not None else {}),
            })
        return rows


def build_simulation(sc: Scenario, offline: bool = True) -> Simulation:
    """The simulation of ``sc``, after its controller's offline stage.

    The controller's :meth:`~wirelessfl.control.Controller.prepare` hook runs first
    (TSFA's pilot picks the structural rank; ``offline=False`` only checks its
    options); the run's simulation is then built once, from the scenario it returns.
    """
    controller = build.build_methods(sc)[2]
    prep = controller.prepare(sc, Simulation, offline)
    return Simulation(prep.scenario, prep)


def default_observers(sc: Scenario, writer: Any, progress: bool,
                      save_adapter: bool = True) -> list[Observer]:
    """Results folder (when ``writer``), logging, the scenario's loggers, a progress bar."""
    from wirelessfl.observers import LOGGERS, LoggingObserver, ProgressObserver, ResultsObserver

    out: list[Observer] = []
    if writer is not None:
        out.append(ResultsObserver(writer, save_adapter))
    out.append(LoggingObserver())
    out.extend(LOGGERS[name](writer.path if writer is not None else None)
               for name in sc.output.loggers)
    if progress:
        out.append(ProgressObserver())
    return out


def _finish(sc: Scenario, path: Path) -> None:
    """What follows ``summary.json``: the plots, then the checkpoint is no longer needed."""
    from wirelessfl.checkpoint import CHECKPOINT

    if sc.output.plots:
        from wirelessfl.plotting import plot_run

        plot_run(path)
    (path / CHECKPOINT).unlink(missing_ok=True)


def run_scenario(sc: Scenario, overwrite: bool = False, progress: bool = True,
                 out_dir: Path | None = None, observers: Sequence[Observer] = (),
                 resume: bool = False) -> tuple[Path, dict[str, Any]]:
    """Build, check the output folder, run (checkpointing every round) and plot.

    With ``resume``, continue the unfinished run in the folder from its checkpoint
    (:func:`resume_run`). Returns (folder, summary).
    """
    import shutil

    from wirelessfl.results import ResultsWriter, RunLock, check_output_dir

    path = out_dir if out_dir is not None else sc.output_dir
    if resume:
        return resume_run(sc, path, progress, observers)
    check_output_dir(path, overwrite)  # before the (slow) build: fail fast
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    lock = RunLock(path)  # one writer per folder, from before the build on
    try:
        sim = build_simulation(sc)
    except BaseException:
        lock.release()
        if created:  # nothing of ours is left behind by a scenario that did not build
            shutil.rmtree(path, ignore_errors=True)
        raise
    try:
        writer = ResultsWriter(path, overwrite=True, lock=lock)
        summary = _play(sim, writer, sc, progress, observers, sc.model_dump(mode="json"))
    finally:
        lock.release()  # also when the run fails: an in-process caller may resume it
    return path, summary


def _play(sim: Simulation, writer: Any, sc: Scenario, progress: bool,
          observers: Sequence[Observer], user: dict[str, Any],
          resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``sim`` into ``writer``'s folder, checkpointing every round, then plot.

    ``user`` is the scenario as given (stored in each checkpoint to check a resume);
    ``resume`` a checkpoint to continue from.
    """
    from wirelessfl import checkpoint as ckpt

    obs = [*default_observers(sim.sc, writer, progress, sc.output.save_adapter), *observers]
    try:
        summary = sim.run(obs, checkpoint=lambda loop: ckpt.save(
            writer.path, sim, loop, writer.snapshot(), user), resume=resume)
        _finish(sc, writer.path)
    finally:
        sim.close()
    return summary


def resume_run(sc: Scenario, path: Path, progress: bool = True,
               observers: Sequence[Observer] = ()) -> tuple[Path, dict[str, Any]]:
    """Continue the run in ``path`` from its checkpoint; finish a finished one's plots.

    ``sc`` must be the scenario the run was started with (a different one is refused,
    naming the first differing key). The simulation is rebuilt from the resolved
    scenario stored in the checkpoint (the controller's offline stage is not rerun),
    the tables are cut back to the checkpoint's round, and the rounds go on.
    """
    import json

    from wirelessfl import checkpoint as ckpt
    from wirelessfl.errors import OutputError
    from wirelessfl.results import ResultsWriter, RunLock
    from wirelessfl.scenario import first_difference

    if (path / "summary.json").is_file():
        lock = RunLock(path)
        try:
            if sc.output.plots and not (path / "plots").is_dir():
                _finish(sc, path)
        finally:
            lock.release()
        return path, json.loads((path / "summary.json").read_text())
    if not (path / ckpt.CHECKPOINT).is_file():
        raise OutputError("--resume", f"{str(path)!r} holds no checkpoint to resume from; "
                          "run without --resume (with --overwrite if the folder holds files)")
    lock = RunLock(path)
    try:
        data = ckpt.read(path)
        diff = first_difference(data["input"], sc.model_dump(mode="json"))
        if diff:
            raise OutputError("--resume", f"the scenario differs from the one the run in "
                              f"{str(path)!r} was started with, at {diff}")
        sim = Simulation(Scenario.model_validate(data["scenario"]))
        writer = ResultsWriter(path, resume=True, lock=lock)
        writer.restore(data["tables"])
        summary = _play(sim, writer, sc, progress, observers, data["input"], resume=data)
    finally:
        lock.release()
    return path, summary
