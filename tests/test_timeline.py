"""The simpy round: uploads integrate the rate across fading blocks exactly."""

from __future__ import annotations

import numpy as np
import pytest

from channels.awgn import AWGN
from channels.base import Channel
from wirelessfl.network.link import shannon_rate_bps
from wirelessfl.sim import RoundSchedule, simulate_round


class Scripted(Channel):
    """A block channel with given per-block gains (for exact checks)."""

    def __init__(self, blocks: np.ndarray, tc: float):
        super().__init__()
        self.blocks = np.asarray(blocks, dtype=float)  # (n_links, n_blocks)
        self.coherence_time_s = tc

    def reset(self, n_links, rng):
        self.n_links = n_links

    def gains(self, times_s):  # defined at every t >= 0: the last block holds
        idx = np.minimum(self.block_index(np.asarray(times_s)), self.blocks.shape[1] - 1)
        return self.blocks[:, idx]


def plan(bits, c=1e6, b=1e6, compute=0.0, dl=0.0, start=0.0, deadline=None, max_up=600.0):
    n = len(np.atleast_1d(bits))
    return RoundSchedule(start, np.arange(n), dl, np.full(n, compute), np.atleast_1d(bits) * 1.0,
                     np.full(n, b), np.full(n, c), deadline, max_up)


def test_awgn_upload_time_is_bits_over_rate():
    ch = AWGN()
    ch.reset(1, None)
    r = shannon_rate_bps(1e6, 1e6)  # 1 Mbit/s
    out = simulate_round(plan(5e5, dl=0.1, compute=0.2, start=3.0), ch)
    assert out.finish_s[0] == pytest.approx(3.0 + 0.1 + 0.2 + 5e5 / r)
    assert out.end_s == pytest.approx(out.finish_s[0])
    assert out.received.all()


def test_upload_across_blocks_finishes_when_integrated_bits_reach_payload():
    gains = np.array([[1.0, 3.0, 0.5, 7.0, 1.0, 1.0]])
    tc = 0.1
    ch = Scripted(gains, tc)
    c, b = 2e6, 1e6
    rates = shannon_rate_bps(b, c * gains[0])
    bits = rates[0] * 0.07 + rates[1] * 0.1 + rates[2] * 0.1 + rates[3] * 0.04
    out = simulate_round(plan(bits, c=c, b=b, compute=0.03), ch)  # upload starts at t = 0.03
    assert out.finish_s[0] == pytest.approx(0.34, rel=1e-12)
    # the integral of the rate over the upload equals the payload
    t0, t1 = out.upload_start_s[0], out.finish_s[0]
    edges = np.clip(np.arange(7) * tc, t0, t1)
    assert np.sum(rates * np.diff(edges)) == pytest.approx(bits, rel=1e-12)


def test_deadline_drops_late_clients_and_ends_the_round_at_the_deadline():
    ch = AWGN()
    ch.reset(3, None)
    r = shannon_rate_bps(1e6, 1e6)
    out = simulate_round(plan(np.array([0.1, 0.5, 2.0]) * r, deadline=1.0), ch)
    assert out.received.tolist() == [True, True, False]
    assert out.drop_reason == ["", "", "deadline"]
    assert out.end_s == pytest.approx(1.0)


def test_outage_drops_a_client_in_a_deep_fade_instead_of_hanging():
    ch = Scripted(np.array([[1.0] * 10, [0.0] * 10]), 1.0)
    r = shannon_rate_bps(1e6, 1e6)
    out = simulate_round(plan(np.array([0.5, 0.5]) * r, max_up=3.0), ch)
    assert out.drop_reason == ["", "outage"]
    assert out.end_s == pytest.approx(3.0)


def test_round_end_is_the_slowest_received_client():
    ch = AWGN()
    ch.reset(2, None)
    r = shannon_rate_bps(1e6, 1e6)
    out = simulate_round(plan(np.array([1.0, 2.0]) * r, start=10.0), ch)
    assert out.end_s == pytest.approx(12.0)
    phases = {(e["client"], e["phase"]) for e in out.events}
    assert (1, "uplink") in phases and (0, "compute") in phases
