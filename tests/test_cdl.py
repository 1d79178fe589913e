"""TR 38.901 CDL fading: each statistic against its closed form.

The references are written from the model's definition (TR 38.901 Sections 7.5 and
7.7.1: clusters of 20 rays at the offsets of Table 7.5-3, random coupling, isotropic
elements), not from the plug-in's code: unit mean gain, the frequency correlation
``sum_n P_n exp(-j 2 pi df tau_n)``, the spatial correlation between two base-station
columns, and each subcarrier's time correlation ``sum_r P_r J0(2 pi f_d sin(theta_r) s)``
for a terminal travelling in a uniform horizontal direction.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import j0

from channels.base import CHANNELS
from channels.cdl import PROFILES

# TR 38.901 Table 7.5-3, typed here again
OFFSETS = [0.0447, 0.1413, 0.2492, 0.3715, 0.5129, 0.6797, 0.8844, 1.1481, 1.5195, 2.1551]
# TR 38.901 Table 7.7.1-3 (CDL-C): the first clusters' delays and powers, typed again
CDL_C_HEAD = [(0.0, -4.4), (0.2099, -1.2), (0.2219, -3.5), (0.2329, -5.2), (0.2176, -2.5)]


def cdl(n_links: int, seed: int = 0, **params):
    ch = CHANNELS.get("cdl").from_dict({"max_doppler_hz": 20.0, "bandwidth_hz": 10e6,
                                        "subcarriers": 32, **params})
    ch.reset(n_links, np.random.default_rng(seed))
    return ch


def table(profile: str):
    """Powers (linear, summing to 1) and delays of a profile's entries, from the table."""
    p = PROFILES[profile]
    power = 10 ** (np.asarray(p.powers) / 10)
    return power / power.sum(), np.asarray(p.delays)


def ray_offsets() -> np.ndarray:
    return np.concatenate([OFFSETS, -np.asarray(OFFSETS)])


def test_cdl_c_table_is_the_standards():
    p = PROFILES["C"]
    assert list(zip(p.delays[:5], p.powers[:5], strict=True)) == CDL_C_HEAD
    assert p.spreads_deg == (2.0, 15.0, 3.0, 7.0) and not p.los
    assert PROFILES["D"].los and PROFILES["E"].los
    for prof in PROFILES.values():
        lengths = {len(prof.delays), len(prof.powers), len(prof.aod), len(prof.aoa),
                   len(prof.zod), len(prof.zoa)}
        assert len(lengths) == 1


@pytest.mark.parametrize("profile", list("ACE"))
def test_band_gain_has_unit_mean(profile):
    ch = cdl(3000, profile=profile, bs_columns=2)
    g = ch.gains(np.arange(4) * 5.0)
    se = g.std() / np.sqrt(g.size / 2)
    assert abs(g.mean() - 1.0) < 4 * se


def test_gains_are_the_band_mean_of_the_combined_response():
    ch = cdl(50, profile="D", bs_rows=2, bs_columns=2)
    t = np.array([0.3, 0.01, 2.0])
    h = ch.response(t)
    assert h.shape == (50, 3, 32, 4)
    np.testing.assert_allclose(ch.gains(t), (np.abs(h) ** 2).mean(axis=(2, 3)), rtol=1e-10)
    sub = ch.subband_gains(t)
    assert sub.shape == (50, 3, 8) and np.all(np.diff(sub, axis=-1) >= 0)
    np.testing.assert_allclose(sub.mean(axis=-1), ch.gains(t), rtol=1e-10)
    # the same times give the same gains in any order
    np.testing.assert_allclose(ch.gains(t[::-1])[:, ::-1], ch.gains(t), rtol=1e-12)


def test_frequency_correlation():
    ch = cdl(4000, profile="C", bs_columns=1, delay_spread_s=300e-9)
    h = ch.response(np.array([0.7]))[:, 0, :, 0]  # (n, F)
    power, delays = table("C")
    f = ch.frequencies_hz
    for k in (1, 5, 12):
        emp = np.mean(h[:, 0] * np.conj(h[:, k]))
        want = np.sum(power * np.exp(-2j * np.pi * (f[0] - f[k]) * delays * 300e-9))
        assert abs(emp - want) < 0.06, (k, emp, want)


def test_spatial_correlation_between_two_columns():
    """``E[H_0 H_1^*] = sum_n P_n mean_{m, m'} exp(-j pi sin(zod_n + c_ZSD a_m')
    sin(aod_n + c_ASD a_m))``: the base station's azimuth and zenith offsets of a ray
    are coupled at random (half-wavelength spacing)."""
    ch = cdl(6000, profile="C", bs_columns=2, subcarriers=4, subbands=2)
    h = ch.response(np.array([0.2]))[:, 0, 0]  # (n, U)
    emp = np.mean(h[:, 0] * np.conj(h[:, 1]))
    p = PROFILES["C"]
    power, _ = table("C")
    asd, _, zsd, _ = np.deg2rad(p.spreads_deg)
    a = ray_offsets()
    want = 0.0
    for n in range(len(power)):
        az = np.deg2rad(p.aod[n]) + asd * a[:, None]
        zen = np.deg2rad(p.zod[n]) + zsd * a[None, :]
        want += power[n] * np.mean(np.exp(-1j * np.pi * np.sin(zen) * np.sin(az)))
    assert abs(emp - want) < 0.05, (emp, want)
    # a complex correlation (0.13 + 0.41j), well below 1: the array's orientation counts
    assert abs(want.imag) > 0.3 and abs(want) < 0.9


@pytest.mark.parametrize("profile", ["A", "D"])
def test_time_correlation_of_a_subcarrier(profile):
    """A terminal moving horizontally in a uniform direction: ray r of zenith theta_r
    (at the terminal) has ``E[exp(j w_r s)] = J0(2 pi f_d sin(theta_r) s)``."""
    f_d, s = 20.0, 0.01
    ch = cdl(6000, profile=profile, bs_columns=1, subcarriers=4, subbands=2)
    h = ch.response(np.array([1.0, 1.0 + s]))[:, :, 0, 0]
    emp = np.mean(h[:, 1] * np.conj(h[:, 0])).real
    p = PROFILES[profile]
    power, _ = table(profile)
    zsa = np.deg2rad(p.spreads_deg[3])
    want = 0.0
    for n in range(len(power)):
        if p.los and n == 0:  # the specular ray has no spread
            want += power[n] * j0(2 * np.pi * f_d * np.sin(np.deg2rad(p.zoa[0])) * s)
            continue
        zen = np.deg2rad(p.zoa[n]) + zsa * ray_offsets()
        want += power[n] * np.mean(j0(2 * np.pi * f_d * np.sin(zen) * s))
    assert emp == pytest.approx(want, abs=0.05)
    assert ch.time_correlation(np.array(s)) == pytest.approx(want, abs=1e-9)


def test_more_antennas_fade_less():
    """Maximum-ratio combining over more base-station antennas: the same unit mean,
    a smaller variance of each subcarrier's gain (diversity)."""
    var = []
    for cols in (1, 4, 16):
        ch = cdl(2000, profile="C", bs_columns=cols, subcarriers=4, subbands=2)
        h = ch.response(np.array([0.5]))
        g = (np.abs(h[:, 0, 0]) ** 2).mean(axis=-1)
        assert g.mean() == pytest.approx(1.0, abs=0.08)
        var.append(g.var())
    assert var[0] > 1.5 * var[1] > 1.5 * 1.5 * var[2] * 0.9


def test_cdl_runs_end_to_end_and_is_reproducible():
    import copy

    import wirelessfl
    from tests.conftest import TINY

    raw = copy.deepcopy(TINY)
    raw["rounds"] = 2
    raw["channel"] = {"fading": {"model": "cdl", "profile": "A", "speed_mps": 3.0,
                                 "bs_columns": 2, "subcarriers": 16, "subbands": 4}}
    a = wirelessfl.run(raw, output=None)
    b = wirelessfl.run(raw, output=None)
    assert a.metrics["round_latency_s"].tolist() == b.metrics["round_latency_s"].tolist()
    assert np.all(np.isfinite(a.clients["planned_upload_s"]))
    assert "planned_round_latency_s" in a.metrics  # auto: planned by expected finish
