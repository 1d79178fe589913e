"""Energy of a played round: transmit and local computation, per client."""

from __future__ import annotations

import numpy as np

from wirelessfl.sim.timeline import RoundOutcome, RoundSchedule


def round_energy_j(schedule: RoundSchedule, outcome: RoundOutcome, tx_power_w: float,
                   joules_per_flop: np.ndarray,
                   round_flops: float) -> tuple[np.ndarray, np.ndarray]:
    """Transmit and compute energy per client of one round, joules, shapes (n,), (n,).

    Parameters
    ----------
    schedule, outcome : RoundSchedule, RoundOutcome
        The round as scheduled and as played (n clients).
    tx_power_w : float
        Client transmit power, W.
    joules_per_flop : ndarray, shape (n,)
        Each client's device energy per FLOP, J.
    round_flops : float
        FLOPs of one client's whole local round.

    Notes
    -----
    Transmit: ``p * (time on the air)``; a dropped client spends energy until it is
    cut off. Compute: ``J/FLOP * FLOPs`` for the share of the local work done before
    the round ended.
    """
    out = outcome
    on_air = np.where(np.isnan(out.finish_s), out.end_s, out.finish_s) - out.upload_start_s
    tx = tx_power_w * np.nan_to_num(np.maximum(on_air, 0.0))
    dl_end = schedule.start_s + schedule.downlink_s
    with np.errstate(divide="ignore", invalid="ignore"):
        done = np.clip((out.end_s - dl_end) / schedule.compute_s, 0.0, 1.0)
    done = np.where(schedule.compute_s > 0, done, 1.0)
    comp = joules_per_flop * round_flops * done
    return tx, comp
