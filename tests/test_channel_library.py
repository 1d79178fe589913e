"""The channel library against the closed forms wireless researchers know by heart.

Tolerances: means within 5 standard errors of the Monte-Carlo estimate; KS tests at
p > 0.01 (and a wrong law rejected at p < 1e-6); Jakes autocorrelation within 0.03
of J0 (ensemble of 4,000 links); capacity and outage within 1 % relative / 0.005
absolute of the closed form (10^6 draws).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from channels.jakes import JakesParams, JakesRayleigh
from channels.nakagami import BlockNakagami, NakagamiParams
from channels.rayleigh import BlockRayleigh, RayleighParams
from channels.rician import BlockRician, RicianParams
from channels.trace import TraceParams, TraceReplay

N_LINKS, N_BLOCKS = 500, 400  # 200k independent draws


def block_draws(ch, seed=0):
    ch.reset(N_LINKS, np.random.default_rng(seed))
    return ch.gains((np.arange(N_BLOCKS) + 0.5) * ch.coherence_time_s).ravel()


def assert_unit_mean(g):
    assert abs(g.mean() - 1.0) < 5 * g.std() / math.sqrt(g.size)


@pytest.mark.parametrize("k_db", [-5.0, 0.0, 6.0, 10.0])
def test_rician_is_scaled_noncentral_chi_square(k_db):
    g = block_draws(BlockRician(RicianParams(k_factor_db=k_db)))
    k = 10 ** (k_db / 10)
    assert_unit_mean(g)
    law = stats.ncx2(df=2, nc=2 * k, scale=1 / (2 * (k + 1)))
    assert stats.kstest(g, law.cdf).pvalue > 0.01
    wrong = stats.ncx2(df=2, nc=2 * k * 2 + 1, scale=1 / (2 * (2 * k + 1.5)))
    assert stats.kstest(g, wrong.cdf).pvalue < 1e-6


def test_rician_linear_k_equals_db_k_and_both_is_an_error():
    a = block_draws(BlockRician(RicianParams(k_factor=10.0)))
    b = block_draws(BlockRician(RicianParams(k_factor_db=10.0)))
    assert np.allclose(a, b)
    with pytest.raises(ValueError):
        RicianParams(k_factor=1.0, k_factor_db=0.0)


@pytest.mark.parametrize("m", [0.5, 1.0, 2.5, 8.0])
def test_nakagami_power_is_gamma(m):
    g = block_draws(BlockNakagami(NakagamiParams(m=m)))
    assert_unit_mean(g)
    assert stats.kstest(g, stats.gamma(a=m, scale=1 / m).cdf).pvalue > 0.01
    assert stats.kstest(g, stats.gamma(a=m * 1.3, scale=1 / (m * 1.3)).cdf).pvalue < 1e-6


def test_nakagami_m1_is_rayleigh_in_law():
    g = block_draws(BlockNakagami(NakagamiParams(m=1.0)))
    assert stats.kstest(g, "expon").pvalue > 0.01


def jakes(n_links=4000, f_d=50.0, seed=0, **kw):
    ch = JakesRayleigh(JakesParams(max_doppler_hz=f_d, **kw))
    ch.reset(n_links, np.random.default_rng(seed))
    return ch


def test_jakes_autocorrelation_is_bessel_j0():
    f_d = 50.0
    ch = jakes(f_d=f_d)
    lags = np.array([0.0, 0.5, 1.0, 2.0, 3.83, 5.0, 8.0]) / (2 * np.pi * f_d)  # 2 pi f_d tau
    t0 = 0.137
    h = ch.complex_gains(np.concatenate([[t0], t0 + lags]))
    rho = np.mean(h[:, [0]].conj() * h[:, 1:], axis=0).real
    assert np.max(np.abs(rho - special.j0(2 * np.pi * f_d * lags))) < 0.03
    assert abs(rho[0] - 1.0) < 0.03  # unit power


def test_jakes_envelope_is_rayleigh_and_doppler_follows_speed():
    g = jakes(n_links=20_000).gains(np.array([0.3]))[:, 0]
    assert stats.kstest(g, "expon").pvalue > 0.01
    ch = JakesRayleigh(JakesParams(speed_mps=30.0, carrier_frequency_hz=3e9))
    assert ch.f_d == pytest.approx(30.0 * 3e9 / 299_792_458.0)
    assert ch.coherence_time_s == pytest.approx(0.423 / ch.f_d)
    with pytest.raises(ValueError):
        JakesParams(speed_mps=3.0, max_doppler_hz=10.0)


def test_jakes_is_continuous_in_time():
    ch = jakes(n_links=50)
    g = ch.gains(np.array([1.0, 1.0 + 1e-6, 1.0 + 1e-2]))
    assert np.max(np.abs(g[:, 0] - g[:, 1])) < 5e-3  # 1 us: 2 pi f_d dt = 3e-4 rad
    assert np.max(np.abs(g[:, 0] - g[:, 2])) > 0.1  # 10 ms: decorrelated (J0(3.14) < 0)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_rayleigh_ergodic_capacity_closed_form(snr_db):
    snr = 10 ** (snr_db / 10)
    ch = BlockRayleigh(RayleighParams(coherence_time_s=1.0))
    ch.reset(2000, np.random.default_rng(1))
    g = ch.gains(np.arange(500) + 0.5).ravel()  # 10^6 draws
    mc = np.mean(np.log2(1 + snr * g))
    closed = math.exp(1 / snr) * special.exp1(1 / snr) / math.log(2)
    assert mc == pytest.approx(closed, rel=0.01)


@pytest.mark.parametrize(("snr_db", "rate"), [(10.0, 1.0), (10.0, 3.0), (20.0, 5.0)])
def test_rayleigh_outage_probability_closed_form(snr_db, rate):
    snr = 10 ** (snr_db / 10)
    ch = BlockRayleigh(RayleighParams(coherence_time_s=1.0))
    ch.reset(2000, np.random.default_rng(2))
    g = ch.gains(np.arange(500) + 0.5).ravel()
    mc = np.mean(np.log2(1 + snr * g) < rate)
    assert mc == pytest.approx(1 - math.exp(-(2**rate - 1) / snr), abs=0.005)


def test_trace_replay_holds_loops_and_checks_links(tmp_path):
    p = tmp_path / "trace.csv"
    rows = ["time_s,link,gain_db"]
    for j, t in enumerate([0.0, 0.5, 1.0]):  # rows in any order
        for link in (1, 0):
            rows.append(f"{t},{link},{10 * link + j}")
    p.write_text("\n".join(rows) + "\n")
    ch = TraceReplay(TraceParams(path=str(p), loop=True))
    ch.reset(2, None)
    assert ch.coherence_time_s == pytest.approx(0.5)
    g = ch.gains(np.array([0.0, 0.49, 0.5, 1.2, 1.5, 1.9]))
    expected_db = np.array([[0, 0, 1, 2, 0, 0], [10, 10, 11, 12, 10, 10]])
    assert np.allclose(10 * np.log10(g), expected_db)
    ch2 = TraceReplay(TraceParams(path=str(p), loop=False))
    ch2.reset(1, None)
    assert np.allclose(10 * np.log10(ch2.gains(np.array([7.0]))), [[2.0]])
    with pytest.raises(ValueError, match="has 2 links"):
        ch.reset(3, None)
