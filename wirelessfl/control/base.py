"""The controller interface, its registry and the long-term latency queue.

A controller decides, every round, each selected client's uplink bandwidth and how
many LoRA ranks it sends. It sees only what a base station would: the CSI at the
round's start, the clients' compute times and payload sizes. numpy/cvxpy only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from wirelessfl.control.planning import UplinkModel, instantaneous
from wirelessfl.registry import NoParams, Registry

CONTROLLERS: Registry[Controller] = Registry("controller")
register_controller = CONTROLLERS.register


@dataclass
class RoundContext:
    """What the controller knows at the start of round ``t`` (n selected clients).

    Attributes
    ----------
    round : int
    client_ids : ndarray of int, shape (n,)
    c_hz : ndarray, shape (n,)
        Estimated SNR-bandwidth product ``p beta g / N0`` at the round start, Hz
        (what instantaneous CSI would plan with; logged as the clients' SNR).
    downlink_s : float
        Broadcast time of the global adapter, common to all clients, seconds.
    compute_s : ndarray, shape (n,)
        Local computation time, seconds.
    full_bits : ndarray, shape (n,)
        Payload at full rank, bits.
    ranks : ndarray of int, shape (n,)
        Each client's LoRA rank r_k (the structural rank r unless heterogeneous).
    bandwidth_hz : float
        Total uplink bandwidth B, Hz.
    latency_budget_s : float or None
        Long-term average latency budget.
    queue : float
        Virtual queue Q(t), seconds.
    weights : ndarray, shape (n,)
        Aggregation weights (training examples) of the clients, not normalised.
    bits : ndarray, shape (n, R + 1), or None
        Payload of client k sending m ranks at ``[k, m]``, bits.
    eps : ndarray, shape (n, R + 1), or None
        Reported relative sparsification error ``eps_k(m)`` (None: the compressor
        does not sparsify, so only full rank is possible).
    uplink : UplinkModel or None
        The planner's model of each client's uplink over the round (the channel's law
        over the upload window given the CSI); times relative to the round start.
        None: the gain in ``c_hz`` is trusted for the whole upload.
    """

    round: int
    client_ids: np.ndarray
    c_hz: np.ndarray
    downlink_s: float
    compute_s: np.ndarray
    full_bits: np.ndarray
    ranks: np.ndarray
    bandwidth_hz: float
    latency_budget_s: float | None
    queue: float
    weights: np.ndarray | None = None
    bits: np.ndarray | None = None
    eps: np.ndarray | None = None
    uplink: UplinkModel | None = None

    @property
    def plan(self) -> UplinkModel:
        """The uplink model to plan with (instantaneous ``c_hz`` when none was given)."""
        if self.uplink is None:
            self.uplink = instantaneous(self.c_hz, np.ones(len(self.c_hz)))
        return self.uplink

    @property
    def start_s(self) -> np.ndarray:
        """Upload start per client after the round start: downlink + compute, seconds."""
        return self.downlink_s + np.asarray(self.compute_s, dtype=float)

    @property
    def p(self) -> np.ndarray:
        """Normalised aggregation weights ``p_k``."""
        w = np.ones(len(self.client_ids)) if self.weights is None else self.weights
        return w / w.sum()


@dataclass
class Allocation:
    """The controller's decision for the n selected clients.

    Attributes
    ----------
    bandwidth_hz : ndarray, shape (n,)
        ``sum <= B``.
    keep_ranks : ndarray of int, shape (n,), or None
        Ranks each client sends; ``None``: all.
    planned_latency_s : ndarray, shape (n,)
        Downlink + compute + upload time the planner expects (its uplink model),
        seconds; for a client left out of the round, its compute end.
    metrics : dict of str to float
        The controller's per-round values for ``metrics.csv`` (solves, fallbacks, ...).
        Deterministic: nothing that depends on the host.
    events : list of dict
        Records for ``events.jsonl`` (``event`` names the kind, e.g.
        ``controller_fallback``); the round loop stamps the round number.
    timings : dict of str to float
        Host wall-clock times of the decision, seconds (``timings.jsonl``, and their
        means in the summary); never in ``metrics.csv``, which must not depend on
        the host.
    resource_blocks : ndarray of int, shape (n,), or None
        Whole OFDMA resource blocks per client when the band is divided into blocks
        (``radio.resource_block_hz``; :mod:`wirelessfl.control.blocks`), else None.
    """

    bandwidth_hz: np.ndarray
    keep_ranks: np.ndarray | None
    planned_latency_s: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    resource_blocks: np.ndarray | None = None


def sent_bits(ctx: RoundContext, keep_ranks: np.ndarray | None) -> np.ndarray:
    """Bits each client sends when it keeps ``keep_ranks`` (None: every rank; 0: the
    client is left out and sends nothing), shape (n,)."""
    full = np.asarray(ctx.full_bits, dtype=float)
    if keep_ranks is None:
        return full
    m = np.asarray(keep_ranks, dtype=int)
    per = full if ctx.bits is None else ctx.bits[np.arange(len(m)), np.maximum(m, 1)]
    return np.where(m > 0, per, 0.0)


def planned_latency_s(ctx: RoundContext, bandwidth_hz: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Planned finish of each upload after the round start, seconds.

    ``tau_k`` with ``D_k(b_k, tau_k) = S_k`` under the planner's uplink model
    (:class:`wirelessfl.control.planning.UplinkModel`); an empty payload finishes
    when its compute does.
    With sample paths in the plan (``channel.csi.planning: expected_finish``), the
    expected finish over them (:class:`wirelessfl.control.paths.PathModel`).
    """
    b, s = np.asarray(bandwidth_hz, dtype=float), np.asarray(bits, dtype=float)
    if ctx.plan.paths is not None:
        return ctx.plan.paths.expected_finish_s(b, s, ctx.start_s)
    return ctx.plan.finish_s(b, s, ctx.start_s)


class LatencyQueue:
    """Virtual queue of the long-term latency constraint: Q(t+1) = max(Q + T - T_budget, 0)."""

    def __init__(self, budget_s: float | None) -> None:
        self.budget_s = budget_s
        self.value = 0.0

    def update(self, latency_s: float) -> float:
        if self.budget_s is not None:
            self.value = max(self.value + latency_s - self.budget_s, 0.0)
        return self.value


@dataclass
class Preparation:
    """What a controller's :meth:`Controller.prepare` decided before the run is built.

    Attributes
    ----------
    scenario : Scenario
        The scenario the run is built with (the user's, or one with structural
        choices made, such as TSFA's LoRA rank).
    tables : dict of str to list of dict
        Extra result tables (``name.csv`` in the results folder), e.g. the offline
        candidates.
    info : dict
        Lines ``wirelessfl validate`` prints.
    """

    scenario: Any
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Controller(ABC):
    """Allocates bandwidth and kept ranks each round.

    Subclasses set ``Params`` and implement :meth:`online`; a controller with an
    offline stage overrides :meth:`prepare`.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    needs_budget: ClassVar[bool] = False
    #: decides with the long-term latency queue Q(t) (plots draw it only then)
    uses_queue: ClassVar[bool] = False

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    def prepare(self, scenario: Any, build: Callable[[Any], Any],
                offline: bool = True) -> Preparation:
        """The controller's offline stage, before the run's components are built.

        Parameters
        ----------
        scenario : Scenario
            The validated scenario.
        build : callable
            ``build(scenario) -> Components`` (:class:`wirelessfl.build.Components`),
            for a pilot of the controller's own: its cell, round sizes and learning
            workbench (the run's components are built once, by the caller, from the
            returned scenario).
        offline : bool
            False: check the options against the scenario but run nothing
            expensive (``wirelessfl validate`` without ``--offline``).

        Raises
        ------
        ScenarioError
            Options that do not fit the scenario (one line naming the key).
        """
        return Preparation(scenario)

    def to_blocks(self, ctx: RoundContext, alloc: Allocation, block_hz: float) -> Allocation:
        """``alloc`` in whole OFDMA blocks of ``block_hz`` summing to the band's
        ``floor(B / w)``. The default rounds each bandwidth to its nearest whole blocks
        (largest remainder); latency-minimising controllers override it with the
        integer optimum (:mod:`wirelessfl.control.blocks`)."""
        from wirelessfl.control.blocks import block_count, largest_remainder, with_blocks

        total = block_count(ctx.bandwidth_hz, block_hz)
        return with_blocks(ctx, alloc, largest_remainder(alloc.bandwidth_hz, total, block_hz),
                           block_hz, sent_bits(ctx, alloc.keep_ranks))

    @abstractmethod
    def online(self, ctx: RoundContext) -> Allocation:
        """The allocation for this round."""


CONTROLLERS.base = Controller
