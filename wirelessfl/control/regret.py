"""Regret of controllers against the per-round hindsight optimum (numpy, no training).

Every controller plays the same synthetic cell (:class:`SyntheticCell` with block
fading) over the same recorded channel trace: the gain of block j of link k is the
same for every controller. Each round, with the controller's own queue Q(t), its
decision is scored on the channel as it really evolved,

    J_ctrl(t) = V sum_k p_k eps_k(m_k) + Q(t) T_real(t),

and so is the best decision that knew the round's realised gains in advance (the
hindsight optimum, :class:`wirelessfl.control.hindsight.HindsightProblem`, whose
nodes are the realised gains block by block). ``J_ctrl - J_hind >= 0`` is the
round's regret; it separates what planning under uncertainty costs from what the
objective itself costs. Leaving a client out (scheduling) is not part of the
hindsight problem, so scheduled variants are not scored here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from channels.law import WindowLaw
from wirelessfl.control.base import Controller, LatencyQueue
from wirelessfl.control.hindsight import HindsightProblem
from wirelessfl.control.synthetic import SyntheticCell
from wirelessfl.control.tsfa import TSFAParams


def realised_law(cell: SyntheticCell, start_s: float, horizon_s: float) -> WindowLaw:
    """The realised gains from ``start_s`` on, block by block (probability 1 each) for
    ``horizon_s``, then the channel's stationary law; times relative to ``start_s``."""
    ch = cell.channel
    tc = ch.coherence_time_s
    blocks = int(min(max(np.ceil(horizon_s / tc) + 2, 8), 4096))
    j0 = int(np.floor(start_s / tc))
    edges = (j0 + np.arange(blocks + 1)) * tc
    g = ch.gains(edges[:-1] + 0.5 * tc)  # (n, blocks)
    n = cell.n
    start = np.broadcast_to(edges[:-1], (n, blocks)).copy()
    start[:, 0] = -np.inf
    known = WindowLaw(g, np.ones((n, blocks)), start,
                      np.broadcast_to(edges[1:], (n, blocks)).copy())
    tail = ch.stationary_law(n, float(edges[-1]))
    return WindowLaw.concat([known, tail]).shifted(start_s)


@dataclass
class RegretRow:
    """One round of one controller."""

    controller: str
    round: int
    queue_s: float
    latency_s: float
    hindsight_latency_s: float
    objective: float
    hindsight_objective: float

    @property
    def regret(self) -> float:
        return self.objective - self.hindsight_objective


def play(name: str, controller: Controller, cell: SyntheticCell, rounds: int,
         budget_s: float, v: float = TSFAParams().v) -> list[RegretRow]:
    """``rounds`` rounds of one controller with their hindsight optima.

    Every controller is scored with the same objective weight ``V = v T_budget^2``
    (TSFA's default ``v`` unless given), whatever weight the controller itself uses.
    """
    q = LatencyQueue(budget_s)
    rows = []
    for t in range(rounds):
        ctx = cell.context(t, q.value, budget_s)
        alloc = controller.online(ctx)
        n = cell.n
        m = np.asarray(ctx.ranks if alloc.keep_ranks is None else alloc.keep_ranks)
        cost = v * budget_s**2 * ctx.p[:, None] * ctx.eps
        cols = np.arange(cost.shape[1])[None, :]
        cost = np.where((cols >= 1) & (cols <= ctx.ranks[:, None]), cost, np.inf)
        bits = ctx.bits.copy()
        bits[:, 0] = 0.0
        sent = bits[np.arange(n), m]
        t0 = cell.now_s
        latency = cell.realised_latency_s(ctx, alloc.bandwidth_hz, sent)
        # the hindsight optimum finishes no later than J_ctrl / Q; cover 3x the round
        law = realised_law(cell, t0, 3 * latency)
        oracle = HindsightProblem(ctx.start_s, bits, cost, cell.c_mean[:, None] * law.gains,
                                  law.probs, law.start_s, law.end_s, ctx.bandwidth_hz,
                                  q.value)
        j_h, _, tau_h = oracle.solve()
        j = float(cost[np.arange(n), m].sum()) + q.value * latency
        rows.append(RegretRow(name, t, q.value, latency, tau_h, j, j_h))
        q.update(latency)
    return rows


def summarise(rows: list[RegretRow], budget_s: float) -> list[dict[str, float | str]]:
    """Per controller: mean objective, hindsight objective, regret, latencies."""
    out = []
    for name in dict.fromkeys(r.controller for r in rows):
        rs = [r for r in rows if r.controller == name]
        out.append({
            "controller": name,
            "rounds": len(rs),
            "avg_latency_s": float(np.mean([r.latency_s for r in rs])),
            "budget_s": budget_s,
            "mean_objective": float(np.mean([r.objective for r in rs])),
            "mean_hindsight_objective": float(np.mean([r.hindsight_objective for r in rs])),
            "mean_regret": float(np.mean([r.regret for r in rs])),
            "relative_regret": _ratio(sum(r.regret for r in rs),
                                      sum(r.hindsight_objective for r in rs)),
            "mean_latency_regret_s": float(np.mean([r.latency_s - r.hindsight_latency_s
                                                    for r in rs])),
        })
    return out


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def write(rows: list[RegretRow], table: list[dict], out: Path) -> None:
    """``rounds.csv``, ``regret.csv`` and ``regret.png`` (cumulative regret) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "rounds.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["controller", "round", "queue_s", "latency_s", "hindsight_latency_s",
                    "objective", "hindsight_objective", "regret"])
        for r in rows:
            w.writerow([r.controller, r.round, r.queue_s, r.latency_s, r.hindsight_latency_s,
                        r.objective, r.hindsight_objective, r.regret])
    with (out / "regret.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for name in dict.fromkeys(r.controller for r in rows):
        reg = np.cumsum([r.regret for r in rows if r.controller == name])
        ax.plot(np.arange(1, len(reg) + 1), reg, label=name)
    ax.set_yscale("symlog", linthresh=1e-3)  # the controllers differ by decades
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative regret (objective units)")
    ax.legend(framealpha=0.8)
    fig.tight_layout()
    fig.savefig(out / "regret.png", dpi=120)
