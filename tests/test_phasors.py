"""The even-grid factorisation of sums of sinusoids against the term-by-term sums, and
validate's latency estimate with its precision rule."""

from __future__ import annotations

import numpy as np
import pytest

from channels.phasors import even_grid, phasors, sinusoids_on_grid
from wirelessfl.sim import expected


def _direct(omega, phi, t):
    ph = omega[:, None, :] * t[:, None] + phi[:, None, :]  # (L, m, N)
    return np.cos(ph) + 1j * np.sin(ph)


@pytest.mark.parametrize("m", [1, 15, 16, 17, 100, 256, 1000, 4099])
def test_grid_phasors_equal_the_term_by_term_ones(m):
    rng = np.random.default_rng(m)
    omega = rng.uniform(-2e3, 2e3, (3, 40))  # rad/s: f_d up to 320 Hz
    phi = rng.uniform(0, 2 * np.pi, (3, 40))
    t = (np.arange(7, 7 + m) + 0.5) * 6.1e-5  # block middles, as the simulator asks
    want = _direct(omega, phi, t)
    np.testing.assert_allclose(phasors(omega, phi, t), want, rtol=0, atol=1e-11)
    if m >= 2:
        grid = even_grid(t, 2e3, min_times=2)
        assert grid is not None and grid[2] == m
        np.testing.assert_allclose(sinusoids_on_grid(omega, phi, *grid), want.sum(-1),
                                   rtol=0, atol=1e-10)


def test_uneven_times_are_not_a_grid_and_are_summed_term_by_term():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1, 500))
    assert even_grid(t, 1e3) is None
    assert even_grid(np.zeros(500), 1e3) is None  # no step
    omega = rng.uniform(-1e3, 1e3, (2, 8))
    phi = rng.uniform(0, 2 * np.pi, (2, 8))
    np.testing.assert_allclose(phasors(omega, phi, t), _direct(omega, phi, t), atol=1e-12)
    # a grid off by more than the phase tolerance at this Doppler is refused
    g = np.arange(500) * 1e-3
    g[250] += 1e-9
    assert even_grid(g, 1e3) is None
    assert even_grid(g, 1e-3) is not None


def test_jakes_gains_on_a_grid_equal_its_definition():
    from channels.jakes import JakesParams, JakesRayleigh

    ch = JakesRayleigh(JakesParams(max_doppler_hz=300.0, num_sinusoids=32))
    ch.reset(4, np.random.default_rng(1))
    t = (np.arange(10_000) + 0.5) * ch.hold_interval_s
    h = np.exp(1j * (ch._omega[:, :, None] * t + ch._phi[:, :, None])).sum(1) / np.sqrt(32)
    np.testing.assert_allclose(ch.complex_gains(t), h, rtol=0, atol=1e-10)


class _Cell:
    """Two links of a block-Rayleigh cell (what the estimate reads of a cell)."""

    def __init__(self, channel):
        self.channel = channel
        self.distance_m = np.array([50.0, 80.0])
        self.uplink_bandwidth_hz = 1e6

    def uplink_c_hz(self, links):
        return np.full(len(links), 1e7)


def _cell():
    from channels.rayleigh import BlockRayleigh

    return _Cell(BlockRayleigh(BlockRayleigh.Params(coherence_time_s=0.01)))


def test_the_precision_rule_stops_once_the_standard_error_is_small():
    est = expected.round_latency_estimate(_cell(), 0.01, 2e6, 0.0, n_rounds=400,
                                          precision=0.02)
    assert expected.MIN_PRECISION_ROUNDS <= est.rounds < 400
    assert est.standard_error_s <= 0.02 * est.mean_s
    full = expected.round_latency_estimate(_cell(), 0.01, 2e6, 0.0, n_rounds=400)
    assert full.rounds == 400
    # the early mean is the mean of the full run's first rounds (same draws)
    first = expected.round_latency_estimate(_cell(), 0.01, 2e6, 0.0, n_rounds=est.rounds)
    assert first.mean_s == est.mean_s
    assert abs(est.mean_s - full.mean_s) <= 4 * est.standard_error_s
    # precision 0 is the old estimate: every round
    assert expected.expected_round_latency_s(_cell(), 0.01, 2e6, 0.0, 50) == \
        expected.round_latency_estimate(_cell(), 0.01, 2e6, 0.0, 50).mean_s


def _jakes_cell(f_d: float = 20.0, k: int = 3):
    from channels.jakes import JakesParams, JakesRayleigh

    cell = _cell()
    cell.channel = JakesRayleigh(JakesParams(max_doppler_hz=f_d))
    cell.distance_m = np.linspace(50.0, 90.0, k)
    return cell


def test_a_bounded_estimate_samples_long_uploads_coarser_and_agrees():
    """Uploads over ~100 coherence times: under a work bound the hold interval grows
    (to at most half a coherence time) and the mean stays within the errors of the
    model's own resolution."""
    cell = _jakes_cell()
    ch = cell.channel
    bits = 4e6  # ~2 s at 2 Mbit/s: ~100 coherence times of 21 ms
    fine = expected.round_latency_estimate(cell, 0.0, bits, 0.0, n_rounds=30, seed=3)
    assert fine.hold_interval_s == ch.hold_interval_s
    bounded = expected.round_latency_estimate(cell, 0.0, bits, 0.0, n_rounds=30, seed=3,
                                              max_values=1e4)
    assert ch.hold_interval_s < bounded.hold_interval_s <= 0.5 * ch.coherence_time_s
    assert bounded.rounds >= expected.MIN_ROUNDS
    spread = np.hypot(fine.standard_error_s, bounded.standard_error_s)
    assert abs(bounded.mean_s - fine.mean_s) <= 4 * spread
    # a generous bound changes nothing: the same draws, the same numbers
    same = expected.round_latency_estimate(cell, 0.0, bits, 0.0, n_rounds=30, seed=3,
                                           max_values=1e12)
    assert same == fine


def test_a_bound_under_one_coarse_round_plays_one_round_and_says_so():
    cell = _jakes_cell()
    est = expected.round_latency_estimate(cell, 0.0, 4e6, 0.0, n_rounds=30, max_values=10)
    assert est.rounds == 1 and np.isnan(est.standard_error_s)
    assert est.hold_interval_s == 0.5 * cell.channel.coherence_time_s


def test_block_fading_is_never_resampled():
    """An i.i.d. block model's blocks are its law: a bound plays fewer rounds (at least
    MIN_ROUNDS), never longer blocks."""
    est = expected.round_latency_estimate(_cell(), 0.01, 2e7, 0.0, n_rounds=50,
                                          max_values=1e3)
    assert est.hold_interval_s == 0.01 and est.rounds == expected.MIN_ROUNDS
