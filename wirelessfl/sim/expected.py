"""Expected round latency under the channel's law, by playing the timeline.

What ``wirelessfl validate`` reports and what TSFA's offline stage compares its
candidates by: not a run's own draws, a fresh realisation of the scenario's
fading model.

A bounded estimate (``max_values``, what ``validate`` asks for) keeps its work under a
number of channel values fixed before it starts. Rounds whose uploads span very many
coherence times would need too many hold intervals even for :data:`MIN_ROUNDS` rounds;
their time-correlated channel (one with a ``time_resolution_s`` option: Jakes, TDL,
CDL) is then sampled at a coarser hold interval, at most half a coherence time. Every
sample still has the model's marginal law and time correlation, and an upload over
many coherence times integrates the rate over many of them either way, so the mean
latency is estimated as before, at a fraction of the work; the hold used is reported.
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
#: the coarsest hold interval a bounded estimate may use, in coherence times
COARSEST_HOLD_TC = 0.5


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
        Its standard error (sample standard deviation / sqrt(rounds)), seconds; NaN
        after one round.
    rounds : int
        Rounds played.
    hold_interval_s : float
        The hold interval the channel was sampled at, seconds (inf for a static one).
    """

    mean_s: float
    standard_error_s: float
    rounds: int
    hold_interval_s: float


def round_latency_estimate(cell, compute_s, bits, downlink_s: float, n_rounds: int = 200,
                           seed: int = 0, bandwidth_hz: np.ndarray | None = None,
                           precision: float = 0.0,
                           max_values: float | None = None) -> LatencyEstimate:
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
        Rounds played: fewer (at least :data:`MIN_ROUNDS`) when a round spans so many
        hold intervals that ``n_rounds`` of them would exceed :data:`MAX_BLOCK_SAMPLES`
        gains.
    seed : int
        Seed of the fresh channel realisation.
    bandwidth_hz : ndarray, shape (K,), optional
        Bandwidth per client; equal shares of the uplink band by default.
    precision : float
        Stop early, after :data:`MIN_PRECISION_ROUNDS` rounds, once the standard error
        of the mean is at most ``precision`` times the mean (0: play every round).
    max_values : float, optional
        A work bound: the channel values drawn after the first round (links x hold
        intervals x the model's ``response_size``) stay under this number, by fewer
        rounds (at least :data:`MIN_ROUNDS`) and, where even those would exceed it, a
        coarser hold interval (see the module's text); where even the coarsest would,
        as many rounds as fit, at least one. None: no such bound (the model's own hold
        interval, always).

    Returns
    -------
    LatencyEstimate
        The mean of the played rounds' latency, its standard error, the rounds played
        and the hold interval. The timeline, not a closed form, is used because an
        upload spans several coherence blocks: the mean of ``S / R`` over a single
        Rayleigh fade is unbounded, the time to push S bits through an evolving channel
        is not.
    """
    model = getattr(cell.channel, "proto", cell.channel)  # a set of links: their model
    k = len(cell.distance_m)
    links = np.arange(k)
    c = cell.uplink_c_hz(links)
    b = np.full(k, cell.uplink_bandwidth_hz / k) if bandwidth_hz is None else bandwidth_hz

    def play(ch, t0: float) -> float:
        ch.forget_before(t0)  # past rounds' blocks are not asked again: bounded memory
        schedule = RoundSchedule(t0, links, downlink_s, np.broadcast_to(compute_s, (k,)),
                                 np.broadcast_to(np.asarray(bits, dtype=float), (k,)), b, c)
        return simulate_round(schedule, ch).end_s

    hold_s, ch, end = None, None, None
    if max_values is not None:
        hold_s, ch, end = _bounded_hold(model, k, seed, play, max_values)
    hard = ch is not None  # even the coarsest hold is over the bound: as few rounds as fit
    if ch is None:
        ch = _fresh(model, k, seed, hold_s)
    tc = ch.coherence_time_s if np.isfinite(ch.coherence_time_s) else 0.0
    # the running total gives the mean summed in round order, as before (np.mean sums
    # pairwise: TSFA's offline choice must not move in its last bits)
    t0, total, played, latencies = 0.0, 0.0, 0, []
    hold = ch.hold_interval_s if np.isfinite(ch.hold_interval_s) else 0.0
    while played < n_rounds:
        if end is None:
            end = play(ch, t0)
        latencies.append(end - t0)
        total += end - t0
        played += 1
        if precision > 0 and played >= MIN_PRECISION_ROUNDS and _settled(latencies, precision):
            break
        if played == 1 and hold > 0:
            # work bound: uploads over very many blocks average the fading within each
            # round, so fewer rounds estimate the mean as well
            n_rounds = _round_bound(n_rounds, k * (end - t0) / hold,
                                    getattr(ch, "response_size", 1), max_values,
                                    1 if hard else MIN_ROUNDS)
        t0, end = end + tc, None  # next round starts in a fresh block
    se = _standard_error(latencies) if played > 1 else float("nan")
    return LatencyEstimate(total / played, se, played, float(ch.hold_interval_s))


def _fresh(model, k: int, seed: int, hold_s: float | None):
    """A fresh realisation of ``model`` on ``k`` links (at the hold interval ``hold_s``)."""
    params = (model.params if hold_s is None
              else model.params.model_copy(update={"time_resolution_s": hold_s}))
    ch = type(model)(params)
    ch.reset(k, np.random.default_rng(seed))
    return ch


def _bounded_hold(model, k: int, seed: int, play, max_values: float):
    """``(hold_s, channel, end_s)`` for a bounded estimate of a model with a
    ``time_resolution_s``: ``(None, None, None)`` when its own hold interval keeps
    :data:`MIN_ROUNDS` rounds under ``max_values`` channel values (or it has no such
    option); a coarser ``hold_s`` that does, at most :data:`COARSEST_HOLD_TC` coherence
    times; or, when even that hold is over the bound, the coarsest hold with the
    channel and the end of the first round already played on it (the round's length
    is measured by that round, played at the coarsest hold)."""
    fields = getattr(getattr(model, "Params", None), "model_fields", {})
    hold, tc = model.hold_interval_s, model.coherence_time_s
    if "time_resolution_s" not in fields or not (np.isfinite(hold) and np.isfinite(tc)):
        return None, None, None
    coarsest = COARSEST_HOLD_TC * tc
    if hold >= coarsest:
        return None, None, None
    pilot = _fresh(model, k, seed, coarsest)
    span = play(pilot, 0.0)
    values = k * span / hold * max(getattr(model, "response_size", 1), 1) * MIN_ROUNDS
    if values <= max_values:
        return None, None, None
    coarser = hold * values / max_values
    if coarser < coarsest:
        return float(coarser), None, None
    return float(coarsest), pilot, span


def _round_bound(n_rounds: int, samples: float, response_size: int,
                 max_values: float | None, floor: int = MIN_ROUNDS) -> int:
    """Rounds to play when one round draws ``samples`` gains (links x hold intervals):
    at least ``floor``."""
    n = min(n_rounds, max(MIN_ROUNDS, int(MAX_BLOCK_SAMPLES // max(samples, 1.0))))
    if max_values is not None:
        values = max(samples * max(response_size, 1), 1.0)
        n = min(n, max(floor, int(max_values // values)))
    return n


def _standard_error(values: list[float]) -> float:
    """The standard error of the mean of ``values`` (sample standard deviation over the
    square root of their number)."""
    return float(np.std(values, ddof=1)) / np.sqrt(len(values))


def _settled(values: list[float], precision: float) -> bool:
    """Whether the standard error of the mean of ``values`` is at most ``precision``
    times their mean."""
    return _standard_error(values) <= precision * abs(float(np.mean(values)))
