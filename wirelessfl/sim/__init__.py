"""The simulated clock: the discrete-event round timeline (simpy), the expected round
latency under the channel's law, and the energy a round costs."""

from wirelessfl.sim.timeline import RoundOutcome, RoundSchedule, simulate_round

__all__ = ["RoundOutcome", "RoundSchedule", "simulate_round"]
