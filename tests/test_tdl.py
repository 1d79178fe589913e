"""TR 38.901 TDL fading: each statistic against its closed form.

The references are written from the model's definition (TR 38.901 Section 7.7.2 and
the sum-of-sinusoids construction), not from the plug-in's code: the frequency
correlation ``sum_l P_l exp(-j 2 pi df tau_l)``, the exact variance of the band gain,
Clarke's ``J0`` for each tap, the exponential law at zero delay spread.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import j0

from channels.base import CHANNELS
from channels.tdl import PROFILES, delay_profile, rms_delay_spread_s

# TR 38.901 Table 7.7.2-3 (TDL-C), typed here again from the standard
TDL_C_DELAYS = [0.0, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.6560, 0.6584, 0.7935,
                0.8213, 0.9336, 1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902,
                5.6077, 6.3065, 6.6374, 7.0427, 8.6523]
TDL_C_DB = [-4.4, -1.2, -3.5, -5.2, -2.5, 0.0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1, -5.1,
            -6.8, -8.7, -13.2, -13.9, -13.9, -15.8, -17.1, -16.0, -15.7, -21.6, -22.8]


def tdl(n_links: int, seed: int = 0, **params):
    ch = CHANNELS.get("tdl").from_dict({"max_doppler_hz": 20.0, **params})
    ch.reset(n_links, np.random.default_rng(seed))
    return ch


def test_tdl_c_table_is_the_standards():
    delays, db = PROFILES["C"]
    assert list(delays) == TDL_C_DELAYS and list(db) == TDL_C_DB


@pytest.mark.parametrize("profile", list("ABCDE"))
def test_delay_profile_sums_to_one_and_has_the_configured_rms_spread(profile):
    delays, powers, los = delay_profile(profile, 300e-9)
    assert powers.sum() == pytest.approx(1.0, abs=1e-12)
    assert los == (profile in "DE")
    # the tables are normalised to a unit rms spread (TDL-D's own table gives 0.994)
    assert rms_delay_spread_s(delays, powers) == pytest.approx(300e-9, rel=0.01)
    # the same from the definition, by hand
    p = powers / powers.sum()
    mean = np.sum(p * delays)
    assert np.sqrt(np.sum(p * (delays - mean) ** 2)) == pytest.approx(300e-9, rel=0.01)


@pytest.mark.parametrize("profile", list("ACE"))
def test_band_gain_has_unit_mean(profile):
    ch = tdl(4000, profile=profile)
    g = ch.gains(np.arange(8) * 5.0)  # 100 Doppler periods apart
    assert g.shape == (4000, 8)
    se = g.std() / np.sqrt(g.size / 2)  # samples of a link are weakly dependent
    assert abs(g.mean() - 1.0) < 4 * se


@pytest.mark.parametrize("profile", ["C", "D"])
def test_frequency_correlation_is_the_delay_profiles_transform(profile):
    ch = tdl(6000, seed=1, profile=profile, delay_spread_s=300e-9, bandwidth_hz=20e6,
             subcarriers=16)
    h = ch.frequency_response(np.array([0.0, 3.0]))  # (links, 2, F)
    h = h.reshape(-1, h.shape[-1])
    f = ch.frequencies_hz
    delays, powers, _ = delay_profile(profile, 300e-9)
    for k in (1, 4, 15):
        sample = np.mean(h[:, 0] * h[:, k].conj())
        df = f[0] - f[k]
        expected = np.sum(powers * np.exp(-2j * np.pi * df * delays))
        assert abs(sample - expected) < 0.04, (k, sample, expected)


def test_band_gain_variance_matches_its_closed_form():
    """For a sum of unit phasors with independent uniform phases,
    ``Var[(1/F) sum_k |H_k|^2] = (1/F^2) sum_kk' |R(f_k - f_k')|^2 - sum_i a_i^4``
    (the Gaussian value minus the sinusoids' fourth-moment deficit)."""
    ch = tdl(20_000, seed=2, profile="C", subcarriers=32, bandwidth_hz=10e6)
    g = ch.gains(np.array([0.7]))[:, 0]
    delays, powers, _ = delay_profile("C", 300e-9)
    f = ch.frequencies_hz
    r = np.exp(-2j * np.pi * (f[:, None, None] - f[None, :, None]) * delays) @ powers
    counts = np.bincount(ch.tap_of, minlength=len(powers))  # the model's sinusoids per tap
    expected = np.mean(np.abs(r) ** 2) - np.sum(powers**2 / counts)
    # the sample variance's standard error, from the sample's fourth moment
    se = np.sqrt((np.mean((g - g.mean()) ** 4) - g.var() ** 2) / g.size)
    assert abs(g.var() - expected) < 4 * se, (g.var(), expected, se)
    assert expected < 0.5  # the band averages the fades: far below Rayleigh's 1


def test_tap_autocorrelation_is_clarkes_j0():
    f_d = 20.0
    ch = tdl(6000, seed=3, profile="C", max_doppler_hz=f_d)
    lags = np.array([0.0, 0.005, 0.01, 0.02, 0.04])
    h = ch.taps(0.3 + lags)  # (links, T, L)
    strongest = int(np.argmax(delay_profile("C", 1.0)[1]))
    x = h[:, :, strongest]
    assert np.mean(np.abs(x[:, 0]) ** 2) == pytest.approx(1.0, abs=0.05)
    for j, lag in enumerate(lags[1:], start=1):
        sample = np.mean(x[:, 0] * x[:, j].conj()).real
        assert sample == pytest.approx(j0(2 * np.pi * f_d * lag), abs=0.04), lag


@pytest.mark.parametrize("profile", list("ABC"))
def test_zero_delay_spread_is_rayleigh(profile):
    ch = tdl(3000, seed=4, profile=profile, delay_spread_s=0.0)
    g = ch.gains(np.array([1.3]))[:, 0]
    assert stats.kstest(g, "expon").pvalue > 0.01


def test_los_profile_d_has_its_k_factor():
    """TDL-D at zero delay spread: Rician with K = 13.3 dB (the first tap's ratio)."""
    ch = tdl(4000, seed=5, profile="D", delay_spread_s=0.0)
    g = ch.gains(np.array([0.9]))[:, 0]
    _, powers, _ = delay_profile("D", 0.0)
    k = powers[0] / powers[1:].sum()  # all taps at delay 0: one Rician gain
    assert stats.kstest(g, stats.ncx2(2, 2 * k, scale=1 / (2 * (k + 1))).cdf).pvalue > 0.01
    assert 10 * np.log10(powers[0] / powers[1]) == pytest.approx(13.3, abs=0.01)


def test_subband_gains_keep_the_band_mean_and_flat_rate_is_never_below():
    ch = tdl(500, seed=6, profile="C", subcarriers=64, subbands=8)
    t = np.array([0.0, 0.37, 2.5])
    sub = ch.subband_gains(t)
    flat = ch.gains(t)
    assert sub.shape == (500, 3, 8)
    np.testing.assert_allclose(sub.mean(axis=-1), flat, rtol=1e-12)
    assert np.all(np.diff(sub, axis=-1) >= 0)
    for b, c in ((1e5, 1e6), (1e6, 1e7), (2e7, 1e6)):
        rate_flat = b * np.log2(1 + c * flat / b)
        rate_sub = (b * np.log2(1 + c * sub / b)).mean(axis=-1)
        assert np.all(rate_flat >= rate_sub - 1e-6)  # Jensen
        assert np.mean(rate_flat / rate_sub) > 1.001  # and the gap is real


def test_same_times_give_the_same_gains_in_any_order():
    ch = tdl(20, seed=7)
    t = np.array([0.5, 0.01, 3.0, 0.01, 1e3])
    g = ch.gains(t)
    order = np.array([4, 2, 0, 1, 3])
    np.testing.assert_array_equal(ch.gains(t[order]), g[:, order])
    np.testing.assert_array_equal(g[:, 1], g[:, 3])
    np.testing.assert_allclose(ch.gains(t[:2]), g[:, :2], rtol=0, atol=0)


def test_gain_is_continuous_in_time_and_decorrelates():
    ch = tdl(2000, seed=8, max_doppler_hz=10.0)
    g = ch.gains(np.array([1.0, 1.0 + 1e-4, 1.0 + 2.0]))
    assert np.max(np.abs(g[:, 1] - g[:, 0])) < 0.05
    assert abs(np.corrcoef(g[:, 0], g[:, 2])[0, 1]) < 0.1


def test_bad_options_name_their_key():
    from wirelessfl.build import resolve
    from wirelessfl.errors import PluginError

    for options, key in (({"max_doppler_hz": 10, "profile": "F"}, "channel.fading.profile"),
                         ({}, "channel.fading"),
                         ({"max_doppler_hz": 10, "subbands": 65}, "channel.fading.subbands"),
                         ({"max_doppler_hz": 10, "subcarriers": 4, "subbands": 8},
                          "channel.fading")):
        with pytest.raises(PluginError) as err:
            resolve(CHANNELS, "channel.fading.model", "tdl", options, "channel.fading")
        assert err.value.key == key, (options, err.value)


def test_the_band_defaults_to_the_scenarios_uplink(tiny_raw):
    from wirelessfl.build import build_cell
    from wirelessfl.scenario import parse_scenario

    tiny_raw["radio"]["uplink_bandwidth_hz"] = 5e6
    tiny_raw["channel"]["fading"] = {"model": "tdl", "max_doppler_hz": 10.0,
                                     "subcarriers": 10}
    f = build_cell(parse_scenario(tiny_raw)).channel.frequencies_hz
    assert f[-1] - f[0] == pytest.approx(5e6 * 9 / 10)  # 10 subcarrier centres over 5 MHz
    tiny_raw["channel"]["fading"]["bandwidth_hz"] = 1e6
    f = build_cell(parse_scenario(tiny_raw)).channel.frequencies_hz
    assert f[-1] - f[0] == pytest.approx(1e6 * 9 / 10)
