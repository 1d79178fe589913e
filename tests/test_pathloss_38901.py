"""3GPP TR 38.901 path loss against values computed by hand from Table 7.4.1-1."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wirelessfl.network.tr38901 import TR38901Params, UMa, UMiStreetCanyon

C = 299_792_458.0


def hand_umi(d2, fc_ghz=3.5, h_bs=10.0, h_ut=1.5):
    d3 = math.hypot(d2, h_bs - h_ut)
    d_bp = 4 * (h_bs - 1) * (h_ut - 1) * fc_ghz * 1e9 / C
    if d2 <= d_bp:
        los = 32.4 + 21 * math.log10(d3) + 20 * math.log10(fc_ghz)
    else:
        los = (32.4 + 40 * math.log10(d3) + 20 * math.log10(fc_ghz)
               - 9.5 * math.log10(d_bp**2 + (h_bs - h_ut) ** 2))
    nlos = 35.3 * math.log10(d3) + 22.4 + 21.3 * math.log10(fc_ghz) - 0.3 * (h_ut - 1.5)
    return los, max(los, nlos)


def hand_uma(d2, fc_ghz=3.5, h_bs=25.0, h_ut=1.5):
    d3 = math.hypot(d2, h_bs - h_ut)
    d_bp = 4 * (h_bs - 1) * (h_ut - 1) * fc_ghz * 1e9 / C
    if d2 <= d_bp:
        los = 28.0 + 22 * math.log10(d3) + 20 * math.log10(fc_ghz)
    else:
        los = (28.0 + 40 * math.log10(d3) + 20 * math.log10(fc_ghz)
               - 9 * math.log10(d_bp**2 + (h_bs - h_ut) ** 2))
    nlos = 13.54 + 39.08 * math.log10(d3) + 20 * math.log10(fc_ghz) - 0.6 * (h_ut - 1.5)
    return los, max(los, nlos)


def test_umi_worked_value():
    # d2 = 100 m, 3.5 GHz, h_BS 10 m: d3 = sqrt(100^2 + 8.5^2) = 100.3606 m, d_BP = 210.2 m
    # LOS = 32.4 + 21 log10(100.3606) + 20 log10(3.5) = 32.4 + 42.0328 + 10.8814 = 85.3142
    m = UMiStreetCanyon(TR38901Params(los="los"))
    assert m.d_bp == pytest.approx(4 * 9 * 0.5 * 3.5e9 / C)
    assert m.loss_los_db(np.array([100.0]))[0] == pytest.approx(85.3142, abs=1e-3)


@pytest.mark.parametrize("d2", [15.0, 50.0, 150.0, 400.0, 900.0, 2000.0])
def test_umi_street_canyon_matches_the_table(d2):
    m = UMiStreetCanyon(TR38901Params(carrier_frequency_hz=3.5e9))
    los, nlos = hand_umi(d2)
    assert m.loss_los_db(np.array([d2]))[0] == pytest.approx(los, abs=1e-9)
    assert m.loss_nlos_db(np.array([d2]))[0] == pytest.approx(nlos, abs=1e-9)


@pytest.mark.parametrize("d2", [15.0, 50.0, 150.0, 400.0, 900.0, 2000.0, 4000.0])
def test_uma_matches_the_table(d2):
    m = UMa(TR38901Params(carrier_frequency_hz=3.5e9))
    los, nlos = hand_uma(d2)
    assert m.loss_los_db(np.array([d2]))[0] == pytest.approx(los, abs=1e-9)
    assert m.loss_nlos_db(np.array([d2]))[0] == pytest.approx(nlos, abs=1e-9)


def test_los_probabilities():
    umi = UMiStreetCanyon(TR38901Params())
    uma = UMa(TR38901Params())
    d = np.array([10.0, 18.0, 100.0])
    assert umi.los_probability(d)[:2].tolist() == [1.0, 1.0]
    assert umi.los_probability(d)[2] == pytest.approx(0.18 + math.exp(-100 / 36) * 0.82)
    assert uma.los_probability(d)[2] == pytest.approx(0.18 + math.exp(-100 / 63) * 0.82)
    tall = UMa(TR38901Params(ut_height_m=18.0))  # C'(h_UT) = (0.5)^1.5
    c = 0.5**1.5
    expect = (0.18 + math.exp(-100 / 63) * 0.82) * (1 + c * 1.25 * 1.0 * math.exp(-100 / 150))
    assert tall.los_probability(np.array([100.0]))[0] == pytest.approx(expect)


def test_auto_los_draws_states_with_the_table_probability_and_std():
    m = UMiStreetCanyon(TR38901Params(los="auto"))
    d = np.full(100_000, 60.0)
    m.draw(d, np.random.default_rng(0))
    assert m.los_state.mean() == pytest.approx(m.los_probability(np.array([60.0]))[0], abs=0.01)
    nl = ~m.los_state
    assert np.std(m.shadow_db[nl]) == pytest.approx(7.82, rel=0.02)
    assert np.std(m.shadow_db[~nl]) == pytest.approx(4.0, rel=0.02)
    g = m.gain_db(d)
    assert np.allclose(g[~nl], -m.loss_los_db(d[~nl]) + m.shadow_db[~nl])
    assert np.allclose(g[nl], -m.loss_nlos_db(d[nl]) + m.shadow_db[nl])


def test_uma_tall_uts_draw_their_effective_environment_height():
    """Table 7.4.1-1 note 1: h_E = 1 m with probability 1 / (1 + C), else uniform on
    {12, 15, ..., h_UT - 1.5}; the breakpoint (and the LOS loss beyond it) follows."""
    h_ut = 22.5
    m = UMa(TR38901Params(ut_height_m=h_ut, los="los", shadowing=False))
    d = np.full(200_000, 300.0)
    m.draw(d, np.random.default_rng(1))
    g = 1.25 * (300 / 100) ** 3 * math.exp(-300 / 150)
    c = ((h_ut - 13) / 10) ** 1.5 * g
    assert (m.h_e == 1.0).mean() == pytest.approx(1 / (1 + c), abs=0.005)
    tall = m.h_e[m.h_e != 1.0]
    assert sorted(np.unique(tall).tolist()) == [12.0, 15.0, 18.0, 21.0]
    assert np.bincount((tall - 12).astype(int) // 3) / len(tall) == pytest.approx(
        [0.25] * 4, abs=0.01)
    for h_e in (1.0, 12.0, 21.0):  # each link's loss with its own breakpoint, by hand
        i = int(np.flatnonzero(m.h_e == h_e)[0])
        d3 = math.hypot(300.0, 25.0 - h_ut)
        d_bp = 4 * (25 - h_e) * (h_ut - h_e) * 3.5e9 / C
        want = (28.0 + 22 * math.log10(d3) + 20 * math.log10(3.5) if 300.0 <= d_bp else
                28.0 + 40 * math.log10(d3) + 20 * math.log10(3.5)
                - 9 * math.log10(d_bp**2 + (25 - h_ut) ** 2))
        assert m.loss_db(d)[i] == pytest.approx(want, abs=1e-9)
    # within 18 m C = 0: every link keeps 1 m
    m.draw(np.full(1000, 15.0), np.random.default_rng(2))
    assert (m.h_e == 1.0).all()


def test_short_uts_draw_nothing_more():
    """Under 13 m h_E = 1 m: the LOS and shadowing draws are what they always were."""
    a = UMa(TR38901Params(ut_height_m=1.5))
    d = np.random.default_rng(3).uniform(20, 2000, 500)
    rng = np.random.default_rng(4)
    a.draw(d, rng)
    after = rng.random()
    rng2 = np.random.default_rng(4)
    los = rng2.random(d.shape) < a.los_probability(d)
    rng2.standard_normal(d.shape)
    assert (a.los_state == los).all() and rng2.random() == after and a.h_e is None
