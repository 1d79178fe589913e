"""Expected round latency under the channel's law, by playing the timeline.

What ``wirelessfl validate`` reports and what TSFA's offline stage compares its
candidates by: not a run's own draws, a fresh realisation of the scenario's
fading model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wirelessfl.sim.timeline import RoundSchedule, simulate_round

#: gains (links x hold intervals) the estimate plays at most, beyond its first round
MAX_BLOCK_SAMPLES = 5_000_000
#: rounds the work bound plays at least
MIN_ROUNDS = 5
#: rounds played before the precision rule may stop (its standard error needs a few)
MIN_PRECISION_ROUNDS = 10


def expected_round_latency_s(cell, compute_s, bits, downlink_s: float,
                             n_rounds: int = 200, seed: int = 0,
                             bandwidth_hz: np.ndarray | None = None,
                             precision: float = 0.0) -> float:
    """Mean round latency of uploads of ``bits``, by simulation (seconds): the mean of
    :func:`round_latency_estimate`, whose parameters it takes."""
    return round_latency_estimate(cell, compute_s, bits, downlink_s, n_rounds, seed,
                                  bandwidth_hz, precision).mean_s


@dataclass(frozen=True)
class LatencyEstimate:
    """A Monte Carlo estimate of the expected round latency.

    Attributes
    ----------
    mean_s : float
        Mean latency of the played rounds, seconds.
    standard_error_s : float
        Its standard error (sample standard deviation / sqrt(rounds)), seconds; 0 for
        one round.
    rounds : int
        Rounds played.
    """

    mean_s: float
    standard_error_s: float
    rounds: int


def round_latency_estimate(cell, compute_s, bits, downlink_s: float, n_rounds: int = 200,
                           seed: int = 0, bandwidth_hz: np.ndarray | None = None,
                           precision: float = 0.0) -> LatencyEstimate:
    """Mean round latency of uploads of ``bits``, by simulation, with its error.

    Parameters
    ----------
    cell : wirelessfl.network.cell.Cell
        The cell (its channel model is copied, not its realisation).
    compute_s, bits : float or ndarray, shape (K,)
        Local computation time (s) and payload (bits), scalars or one per client.
    downlink_s : float
        Broadcast time, seconds.
    n_rounds : int
        Rounds played: fewer (at least 5) when a round spans so many hold intervals
        that ``n_rounds`` of them would exceed :data:`MAX_BLOCK_SAMPLES` gains.
    seed : int
        Seed of the fresh channel realisation.
    bandwidth_hz : ndarray, shape (K,), optional
        Bandwidth per client; equal shares of the uplink band by default.
    precision : float
        Stop early, after :data:`MIN_PRECISION_ROUNDS` rounds, once the standard error
        of the mean is at most ``precision`` times the mean (0: play every round).

    Returns
    -------
    LatencyEstimate
        The mean of the played rounds' latency, its standard error and the rounds
        played. The timeline,
        not a closed form, is used because an upload spans several coherence blocks:
        the mean of ``S / R`` over a single Rayleigh fade is unbounded, the time to
        push S bits through an evolving channel is not.
    """
    model = getattr(cell.channel, "proto", cell.channel)  # a set of links: their model
    ch = type(model)(model.params)
    k = len(cell.distance_m)
    ch.reset(k, np.random.default_rng(seed))
    links = np.arange(k)
    c = cell.uplink_c_hz(links)
    b = np.full(k, cell.uplink_bandwidth_hz / k) if bandwidth_hz is None else bandwidth_hz
    tc = ch.coherence_time_s if np.isfinite(ch.coherence_time_s) else 0.0
    t0, total, played, latencies = 0.0, 0.0, 0, []
    hold = ch.hold_interval_s if np.isfinite(ch.hold_interval_s) else 0.0
    while played < n_rounds:
        ch.forget_before(t0)  # past rounds' blocks are not asked again: bounded memory
        schedule = RoundSchedule(t0, links, downlink_s, np.broadcast_to(compute_s, (k,)),
                                 np.broadcast_to(np.asarray(bits, dtype=float), (k,)), b, c)
        out = simulate_round(schedule, ch)
        latencies.append(out.end_s - t0)
        total += out.end_s - t0
        played += 1
        if precision > 0 and played >= MIN_PRECISION_ROUNDS and _settled(latencies, precision):
            break
        if played == 1 and hold > 0:
            # work bound: uploads over very many blocks average the fading within each
            # round, so fewer rounds estimate the mean as well (at least 5)
            per_round = k * (out.end_s - t0) / hold
            n_rounds = min(n_rounds, max(MIN_ROUNDS, int(MAX_BLOCK_SAMPLES // max(per_round, 1.0))))
        t0 = out.end_s + tc  # next round starts in a fresh block
    se = float(np.std(latencies, ddof=1)) / np.sqrt(played) if played > 1 else 0.0
    return LatencyEstimate(total / played, se, played)


def _settled(values: list[float], precision: float) -> bool:
    """Whether the standard error of the mean of ``values`` is at most ``precision``
    times their mean."""
    x = np.asarray(values)
    return float(np.std(x, ddof=1)) / np.sqrt(len(x)) <= precision * abs(float(x.mean()))
