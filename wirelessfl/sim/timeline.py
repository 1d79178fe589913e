"""One synchronous round played as discrete events (simpy).

Each selected client is a simpy process: it waits for the broadcast downlink, runs
its local computation, then uploads its payload over its FDMA share while the
channel evolves. On a block-fading channel the rate is constant within a coherence
block and redrawn across blocks, so the upload finishes when the integral of the
instantaneous rate reaches the payload size S (time-correlated models are held
constant over a short resolution step and integrated with the midpoint rule):

    integral_{t_0}^{t_fin} b log2(1 + c g(t) / b) dt = S.

On a wideband channel with Q sub-bands the rate is the mean over the sub-bands,
``mean_q b log2(1 + c g_q(t) / b)`` (the client's share spread over the band).

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
class RoundSchedule:
    """What the round will play, for ``n`` selected clients: who sends how many bits,
    on what bandwidth, from when.

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
    clients : ndarray of int, shape (n,), or None
        The client ids the timeline's events name, when the links are not the client
        ids (a lazily drawn population plays on a cell of the selected clients only).
        None: the links.
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
    clients: np.ndarray | None = None

    @property
    def client_ids(self) -> np.ndarray:
        return self.links if self.clients is None else self.clients


@dataclass
class RoundOutcome:
    """What happened in a round, for the same ``n`` clients as the schedule.

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
    """Small-scale gains of every link over consecutive hold intervals, fetched in bulk.

    Block models are exact (the interval is the coherence block). Continuous-time
    models are held over their resolution step and sampled at its midpoint, so the
    rate integral is computed with the midpoint rule. Blocks from the round's first
    one on are kept in one array (links x blocks), grown geometrically with one
    vectorised ``channel.gains`` call at a time.
    """

    def __init__(self, channel: Channel, start_s: float) -> None:
        self.channel = channel
        self.tc = channel.hold_interval_s
        self.first = self.block_of(start_s)
        self._arr: np.ndarray | None = None

    def block_of(self, t: float) -> int:
        return 0 if not np.isfinite(self.tc) else int(np.floor(t / self.tc))

    def blocks(self, j0: int, j1: int) -> np.ndarray:
        """Sub-band gains of every link for blocks ``j0 .. j1 - 1``, shape
        (links, j1 - j0, Q)."""
        have = 0 if self._arr is None else self._arr.shape[1]
        need = j1 - self.first
        if need > have:
            grow = need - have  # callers ask in doubling chunks (amortised)
            js = np.arange(self.first + have, self.first + have + grow)
            mids = (js + 0.5) * self.tc if np.isfinite(self.tc) else np.zeros(len(js))
            new = np.asarray(self.channel.subband_gains(mids), dtype=float)
            self._arr = new if self._arr is None else np.concatenate([self._arr, new], axis=1)
        return self._arr[:, j0 - self.first : j1 - self.first]  # type: ignore[index]


def upload_end(t0: float, bits: float, b: float, c: float, link: int, gains: _BlockGains,
               max_upload_s: float) -> tuple[float, bool]:
    """When an upload of ``bits`` started at ``t0`` ends, and whether it finished.

    The rate in block j is ``mean_q b log2(1 + c g_jq / b)`` over the channel's
    sub-bands (one for a flat channel; a NaN rate delivers nothing);
    the upload integrates it block by block, vectorised over chunks of blocks, and
    gives up ``max_upload_s`` after ``t0`` (an outage). Returns ``(end_s, finished)``.
    """
    give_up = t0 + max_upload_s
    if bits <= 0:
        return t0, True
    tc = gains.tc
    if not np.isfinite(tc):
        rate = float(shannon_rate_bps(b, c * gains.blocks(0, 1)[link, 0]).mean())
        if rate > 0 and rate * max_upload_s >= bits:
            return t0 + bits / rate, True
        return give_up, False
    j, delivered, chunk = gains.block_of(t0), 0.0, 4
    while True:
        js = np.arange(j, j + chunk)
        starts = np.maximum(js * tc, t0)
        ends = np.minimum((js + 1) * tc, give_up)
        live = ends > starts
        with np.errstate(invalid="ignore"):
            rates = shannon_rate_bps(b, c * gains.blocks(j, j + chunk)[link]).mean(axis=-1)
        rates = np.where(rates >= 0, rates, 0.0)  # NaN -> 0
        seg = np.where(live, rates * (ends - starts), 0.0)
        cum = delivered + np.cumsum(seg)
        hit = np.flatnonzero(cum >= bits)
        if hit.size:
            k = int(hit[0])
            return float(starts[k] + (bits - (cum[k] - seg[k])) / rates[k]), True
        if not live[-1]:
            return give_up, False
        delivered, j, chunk = float(cum[-1]), j + chunk, min(2 * chunk, 1 << 16)


def simulate_round(schedule: RoundSchedule, channel: Channel) -> RoundOutcome:
    """Simulate one round on ``channel`` and return per-client finish times."""
    n = len(schedule.links)
    if not schedule.downlink_s <= schedule.max_upload_s:  # inf and NaN included
        # the broadcast cannot finish: the same outage rule as an upload; nobody trains
        give_up = schedule.max_upload_s
        if schedule.deadline_s is not None:
            give_up = min(give_up, schedule.deadline_s)
        end = schedule.start_s + give_up
        return RoundOutcome(np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=bool),
                            ["downlink_outage"] * n, float(end),
                            [{"client": int(k), "phase": "outage", "start_s": schedule.start_s,
                              "end_s": float(end)} for k in schedule.client_ids])
    env = simpy.Environment(initial_time=schedule.start_s)
    gains = _BlockGains(channel, schedule.start_s)
    upload_start = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    reason = ["deadline"] * n
    events: list[dict] = []
    t_dl_end = schedule.start_s + schedule.downlink_s

    def client(i: int):
        yield env.timeout(schedule.downlink_s)
        events.append({"client": int(schedule.client_ids[i]), "phase": "downlink",
                       "start_s": schedule.start_s, "end_s": t_dl_end})
        yield env.timeout(float(schedule.compute_s[i]))
        t0 = env.now
        events.append({"client": int(schedule.client_ids[i]), "phase": "compute",
                       "start_s": t_dl_end, "end_s": t0})
        if schedule.scheduled is not None and not schedule.scheduled[i]:
            reason[i] = "unscheduled"
            return
        upload_start[i] = t0
        end, finished = upload_end(t0, float(schedule.upload_bits[i]),
                                   float(schedule.bandwidth_hz[i]), float(schedule.c_hz[i]),
                                   int(schedule.links[i]), gains, schedule.max_upload_s)
        yield env.timeout(end - t0)
        if not finished:
            reason[i] = "outage"
            events.append({"client": int(schedule.client_ids[i]), "phase": "outage",
                           "start_s": t0, "end_s": env.now})
            return
        finish[i] = env.now
        reason[i] = ""
        events.append({"client": int(schedule.client_ids[i]), "phase": "uplink",
                       "start_s": t0, "end_s": env.now})

    for i in range(n):
        env.process(client(i))
    until = None if schedule.deadline_s is None else schedule.start_s + schedule.deadline_s
    env.run(until=until)

    received = np.array([r == "" for r in reason], dtype=bool)
    if until is not None and any(r == "deadline" for r in reason):
        end = until  # the server waited for the stragglers until the deadline
    else:
        ends = [e["end_s"] for e in events if e["phase"] in ("uplink", "outage")]
        end = max(ends) if ends else t_dl_end
    return RoundOutcome(upload_start, finish, received, reason, float(end), events)
