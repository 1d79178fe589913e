"""Link budget against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wirelessfl.network.compute import DEVICE_PROFILES
from wirelessfl.network.link import noise_psd_w_hz, shannon_rate_bps, snr_bandwidth_product_hz
from wirelessfl.network.pathloss import FreeSpace, FreeSpaceParams, LogDistance, LogDistanceParams
from wirelessfl.network.payload import dense_bits, rank_index_bits
from wirelessfl.network.placement import place_clients
from wirelessfl.network.units import db_to_lin, dbm_to_w


def test_unit_conversions():
    assert dbm_to_w(30.0) == pytest.approx(1.0)
    assert dbm_to_w(0.0) == pytest.approx(1e-3)
    assert db_to_lin(20.0) == pytest.approx(100.0)


def test_log_distance_matches_36814_macro_formula():
    pl = LogDistance(LogDistanceParams())
    # 128.1 + 37.6 log10(d_km): at 500 m -> 128.1 + 37.6 * (-0.30103) = 116.78127 dB
    assert pl.loss_db(np.array([500.0]))[0] == pytest.approx(116.78127, abs=1e-4)
    assert pl.loss_db(np.array([1000.0]))[0] == pytest.approx(128.1)
    assert pl.loss_db(np.array([2000.0]))[0] == pytest.approx(128.1 + 37.6 * math.log10(2))


def test_free_space_loss_at_1km_3p5ghz():
    pl = FreeSpace(FreeSpaceParams(carrier_frequency_hz=3.5e9))
    # km/MHz form: 20 log10(1) + 20 log10(3500) + 32.4478 = 103.3292 dB
    assert pl.loss_db(np.array([1000.0]))[0] == pytest.approx(103.3292, abs=1e-3)


def test_shadowing_has_the_configured_std():
    pl = LogDistance(LogDistanceParams(shadowing_std_db=8.0))
    d = np.full(100_000, 300.0)
    pl.draw(d, np.random.default_rng(0))
    g = pl.gain_db(d)
    assert np.mean(g) == pytest.approx(-pl.loss_db(d)[0], abs=0.1)
    assert np.std(g) == pytest.approx(8.0, rel=0.01)


def test_shannon_rate_by_hand():
    # -174 dBm/Hz + 7 dB NF -> 10^(-16.7) mW/Hz = 1.99526e-20 W/Hz
    n0 = noise_psd_w_hz(-174.0, 7.0)
    assert n0 == pytest.approx(1.995262e-20, rel=1e-6)
    # 23 dBm (0.19953 W) over a 100 dB loss: c = 0.19953 * 1e-10 / n0 = 1e9 Hz
    c = snr_bandwidth_product_hz(23.0, -100.0, 1.0, n0)
    assert c == pytest.approx(1e9, rel=1e-6)
    # 1 MHz: SNR = 1000 -> 1e6 * log2(1001) = 9.96722 Mbit/s
    assert shannon_rate_bps(1e6, c) == pytest.approx(9.967226e6, rel=1e-6)
    assert shannon_rate_bps(0.0, c) == 0.0
    # wideband limit c / ln 2
    assert shannon_rate_bps(1e15, c) == pytest.approx(c / math.log(2), rel=1e-4)


def test_payload_bits():
    assert dense_bits([10, 20, 5], 32) == 35 * 32
    assert rank_index_bits(3, 8) == 3 * 3
    assert rank_index_bits(8, 8) == 0


def test_disk_placement_is_uniform_in_area():
    pos = place_clients(200_000, "disk", np.random.default_rng(0), radius_m=500,
                        min_distance_m=50)
    d = np.linalg.norm(pos, axis=1)
    assert d.min() >= 50 and d.max() <= 500
    # P(d <= 300) = (300^2 - 50^2) / (500^2 - 50^2)
    assert np.mean(d <= 300) == pytest.approx((300**2 - 50**2) / (500**2 - 50**2), abs=0.005)


def test_compute_time():
    p = DEVICE_PROFILES["phone"]
    assert p.compute_time_s(2 * p.flops_per_s) == pytest.approx(2.0)
