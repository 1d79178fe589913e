"""Channel plug-ins against closed forms, and the registry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from channels import CHANNELS, UnknownNameError
from channels.awgn import AWGN
from channels.rayleigh import BlockRayleigh, RayleighParams


def rayleigh(n_links=1000, tc=0.01, seed=1):
    ch = BlockRayleigh(RayleighParams(coherence_time_s=tc))
    ch.reset(n_links, np.random.default_rng(seed))
    return ch


def test_rayleigh_power_is_exponential_with_unit_mean():
    ch = rayleigh(n_links=200)
    g = ch.gains((np.arange(500) + 0.5) * 0.01).ravel()  # 100k independent blocks
    assert g.shape == (100_000,)
    assert abs(g.mean() - 1.0) < 0.015  # std of the mean is 1/sqrt(1e5) = 0.003
    assert stats.kstest(g, "expon").pvalue > 0.01


def test_rayleigh_ks_rejects_a_wrong_law():
    g = rayleigh(n_links=200).gains((np.arange(500) + 0.5) * 0.01).ravel()
    assert stats.kstest(g, "expon", args=(0, 1.2)).pvalue < 1e-6  # mean 1.2: must fail


def test_block_fading_is_constant_within_a_block_and_changes_across():
    ch = rayleigh(n_links=5, tc=0.1)
    g = ch.gains(np.array([0.0, 0.05, 0.0999, 0.1, 0.25]))
    assert np.all(g[:, 0] == g[:, 1]) and np.all(g[:, 1] == g[:, 2])
    assert np.all(g[:, 2] != g[:, 3]) and np.all(g[:, 3] != g[:, 4])


def test_gains_do_not_depend_on_query_order():
    t = np.array([3.21, 0.0, 12.5, 0.7, 7.77])
    a = rayleigh(n_links=7).gains(t)
    ch = rayleigh(n_links=7)
    for j in np.argsort(-t):  # far blocks first, one at a time
        assert np.array_equal(ch.gains(t[[j]])[:, 0], a[:, j])


def test_forgetting_old_blocks_keeps_every_later_gain_and_bounds_memory():
    keep_all, forget = rayleigh(n_links=4, tc=0.01), rayleigh(n_links=4, tc=0.01)
    rng = np.random.default_rng(0)
    for start in np.arange(0.0, 50.0, 0.37):  # rounds of up to 0.3 s, 5,000 blocks in all
        forget.forget_before(start)
        t = start + rng.uniform(0, 0.3, 9)
        assert np.array_equal(forget.gains(t), keep_all.gains(t))
        assert forget._blocks.shape[0] <= 200  # the round's blocks, not the run's
    assert keep_all._blocks.shape[0] > 5000
    with pytest.raises(ValueError, match="forgotten"):
        forget.gains(np.array([1.0]))


def test_same_generator_seed_same_gains_other_seed_differs():
    t = np.linspace(0, 1, 11)
    assert np.array_equal(rayleigh(seed=4).gains(t), rayleigh(seed=4).gains(t))
    assert not np.array_equal(rayleigh(seed=4).gains(t), rayleigh(seed=5).gains(t))


def test_awgn_is_unit_gain():
    ch = AWGN()
    ch.reset(3, np.random.default_rng(0))
    assert np.array_equal(ch.gains(np.array([0.0, 1.0])), np.ones((3, 2)))


def test_registry_names_and_import_path():
    assert {"awgn", "rayleigh"} <= set(CHANNELS.names())
    assert CHANNELS.get("channels.rayleigh:BlockRayleigh") is BlockRayleigh
    with pytest.raises(UnknownNameError) as err:
        CHANNELS.get("raleigh")
    assert "rayleigh" in str(err.value)


def test_a_run_keeps_only_the_current_rounds_blocks(tiny_raw):
    from wirelessfl.build import build_components
    from wirelessfl.scenario import Scenario
    from wirelessfl.session import play

    tiny_raw["rounds"] = 6
    tiny_raw["channel"]["fading"]["coherence_time_s"] = 0.0002
    c = build_components(Scenario.model_validate(tiny_raw))
    summary = play(c, [])
    ch = c.cell.channel
    blocks_played = summary["sim_time_s"] / ch.coherence_time_s
    assert blocks_played > 3 * ch._blocks.shape[0] and ch._first > 0


def test_jakes_power_correlation_halves_at_0_179_over_the_doppler():
    """0.423 / f_d is a rule of thumb; corr(|h(t)|^2, |h(t + tau)|^2) = J0^2(2 pi f_d tau)
    is 1/2 at tau = 0.179 / f_d (measured on the model, many links)."""
    from scipy.optimize import brentq
    from scipy.special import j0

    from channels.jakes import HALF_POWER_CORRELATION, JakesParams, JakesRayleigh

    x = brentq(lambda u: j0(2 * np.pi * u) ** 2 - 0.5, 0.05, 0.3)
    assert HALF_POWER_CORRELATION == pytest.approx(x, abs=1e-4)
    ch = JakesRayleigh(JakesParams(max_doppler_hz=10.0))
    ch.reset(20_000, np.random.default_rng(0))
    tau = HALF_POWER_CORRELATION / 10.0
    g = ch.gains(np.array([0.3, 0.3 + tau]))
    assert np.corrcoef(g[:, 0], g[:, 1])[0, 1] == pytest.approx(0.5, abs=0.03)
    assert ch.coherence_time_s == pytest.approx(0.423 / 10.0)
