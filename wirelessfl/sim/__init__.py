"""The discrete-event round timeline (simpy)."""

from wirelessfl.sim.timeline import RoundOutcome, RoundPlan, play_round

__all__ = ["RoundOutcome", "RoundPlan", "play_round"]
