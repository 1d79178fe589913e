"""One synchronous round played as discrete events (simpy).

Each selected client is a simpy process: it waits for the broadcast downlink, runs
its local computation, then uploads its payload over its FDMA share while the
channel evolves. On a block-fading channel the rate is constant within a coherence
block and redrawn across blocks, so the upload finishes when the integral of the
instantaneous rate reaches the payload size S (time-correlated models are held
constant over a short resolution step and integrated with the midpoint rule):

    integral_{t_0}^{t_fin} b log2(1 + c g(t) / b) dt = S.

An optional deadline ends the round early and drops the clients still busy; an
upload that has not finished after ``max_upload_s`` is an outage and is dropped
too, so a deep fade cannot hang the simulation. The timeline knows nothing of how
the learning works: it takes seconds and bits and returns finish times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from channels.base import Channel
from wirelessfl.network.link import shannon_rate_bps


@dataclass
class RoundPlan:
    """What the round will play, for ``n`` selected clients.

    Attributes
    ----------
    start_s : float
        Simulated time at which the round starts, seconds.
    links : ndarray of int, shape (n,)
        Channel link index (client id) of each selected client.
    downlink_s : float
        Broadcast time of the global adapter, seconds (same for all).
    compute_s : ndarray, shape (n,)
        Local computation time, seconds.
    upload_bits : ndarray, shape (n,)
        Uplink payload, bits.
    bandwidth_hz : ndarray, shape (n,)
        FDMA bandwidth share, Hz.
    c_hz : ndarray, shape (n,)
        Large-scale SNR-bandwidth product ``p beta / N0`` (Hz), without fading.
    deadline_s : float or None
        Round deadline relative to ``start_s``, seconds.
    max_upload_s : float
        Upload duration after which the client is in outage, seconds.
    scheduled : ndarray of bool, shape (n,), or None
        Clients that upload; the others (left out by the controller) compute but send
        nothing and do not hold the round up. None: all.
    """

    start_s: float
    links: np.ndarray
    downlink_s: float
    compute_s: np.ndarray
    upload_bits: np.ndarray
    bandwidth_hz: np.ndarray
    c_hz: np.ndarray
    deadline_s: float | None = None
    max_upload_s: float = 600.0
    scheduled: np.ndarray | None = None


@dataclass
class RoundOutcome:
    """What happened in a round, for the same ``n`` clients as the plan.

    Attributes
    ----------
    upload_start_s, finish_s : ndarray, shape (n,)
        Absolute simulated times; ``finish_s`` is NaN for a dropped client.
    received : ndarray of bool, shape (n,)
        Whether the server got the client's update in time.
    drop_reason : list of str
        ``""`` (received), ``"deadline"``, ``"outage"`` or ``"unscheduled"`` per client.
    end_s : float
        Absolute time at which the server aggregates.
    events : list of dict
        ``{client, phase, start_s, end_s}`` per phase, for timelines.
    """

    upload_start_s: np.ndarray
    finish_s: np.ndarray
    received: np.ndarray
    drop_reason: list[str]
    end_s: float
    events: list[dict] = field(default_factory=list)

    @property
    def upload_s(self) -> np.ndarray:
        return self.finish_s - self.upload_start_s


class _BlockGains:
    """Small-scale gains of every link, fetched once per hold interval.

    Block models are exact (the interval is the coherence block). Continuous-time
    models are held over their resolution step and sampled at its midpoint, so the
    rate integral is computed with the midpoint rule.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.tc = channel.hold_interval_s
        self._cache: dict[int, np.ndarray] = {}

    def block_of(self, t: float) -> int:
        return 0 if not np.isfinite(self.tc) else int(np.floor(t / self.tc))

    def block_end(self, j: int) -> float:
        return float("inf") if not np.isfinite(self.tc) else (j + 1) * self.tc

    def at_block(self, j: int) -> np.ndarray:
        if j not in self._cache:
            mid = 0.0 if not np.isfinite(self.tc) else (j + 0.5) * self.tc
            self._cache[j] = self.channel.gains(np.array([mid]))[:, 0]
        return self._cache[j]


def play_round(plan: RoundPlan, channel: Channel) -> RoundOutcome:
    """Play one round on ``channel`` and return per-client finish times."""
    n = len(plan.links)
    if not plan.downlink_s <= plan.max_upload_s:  # inf and NaN included
        # the broadcast cannot finish: the same outage rule as an upload; nobody trains
        give_up = plan.max_upload_s
        if plan.deadline_s is not None:
            give_up = min(give_up, plan.deadline_s)
        end = plan.start_s + give_up
        return RoundOutcome(np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=bool),
                            ["downlink_outage"] * n, float(end),
                            [{"client": int(k), "phase": "outage", "start_s": plan.start_s,
                              "end_s": float(end)} for k in plan.links])
    env = simpy.Environment(initial_time=plan.start_s)
    gains = _BlockGains(channel)
    upload_start = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    reason = ["deadline"] * n
    events: list[dict] = []
    t_dl_end = plan.start_s + plan.downlink_s

    def client(i: int):
        yield env.timeout(plan.downlink_s)
        events.append({"client": int(plan.links[i]), "phase": "downlink",
                       "start_s": plan.start_s, "end_s": t_dl_end})
        yield env.timeout(float(plan.compute_s[i]))
        t0 = env.now
        events.append({"client": int(plan.links[i]), "phase": "compute",
                       "start_s": t_dl_end, "end_s": t0})
        if plan.scheduled is not None and not plan.scheduled[i]:
            reason[i] = "unscheduled"
            return
        upload_start[i] = t0
        remaining = float(plan.upload_bits[i])
        b = float(plan.bandwidth_hz[i])
        j = gains.block_of(t0)
        give_up = t0 + plan.max_upload_s
        while remaining > 0:
            t = env.now
            rate = float(shannon_rate_bps(b, plan.c_hz[i] * gains.at_block(j)[plan.links[i]]))
            if not rate >= 0:  # a NaN rate never delivers a bit
                rate = 0.0
            step_end = min(gains.block_end(j), give_up)
            if rate > 0 and rate * (step_end - t) >= remaining:
                yield env.timeout(remaining / rate)
                remaining = 0.0
            else:
                remaining -= rate * (step_end - t)
                yield env.timeout(step_end - t)
                if env.now >= give_up:
                    reason[i] = "outage"
                    events.append({"client": int(plan.links[i]), "phase": "outage",
                                   "start_s": t0, "end_s": env.now})
                    return
                j += 1
        finish[i] = env.now
        reason[i] = ""
        events.append({"client": int(plan.links[i]), "phase": "uplink",
                       "start_s": t0, "end_s": env.now})

    for i in range(n):
        env.process(client(i))
    until = None if plan.deadline_s is None else plan.start_s + plan.deadline_s
    env.run(until=until)

    received = np.array([r == "" for r in reason], dtype=bool)
    if until is not None and any(r == "deadline" for r in reason):
        end = until  # the server waited for the stragglers until the deadline
    else:
        ends = [e["end_s"] for e in events if e["phase"] in ("uplink", "outage")]
        end = max(ends) if ends else t_dl_end
    return RoundOutcome(upload_start, finish, received, reason, float(end), events)
