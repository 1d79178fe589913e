"""Our `tdl` against Sionna's TR 38.901 TDL, an independent implementation.

Skipped unless the optional extra is installed (``pip install wirelessfl[sionna]``;
``make`` installs it). Sionna draws from its own global generator, seeded here; each
comparison is between two samples of the same law, with tolerances from their
sampling error.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from channels.base import CHANNELS

sionna_phy = pytest.importorskip("sionna.phy")
TDL = pytest.importorskip("sionna.phy.channel.tr38901").TDL

BAND_HZ, F = 18.36e6, 64
FREQS = BAND_HZ * ((np.arange(F) + 0.5) / F - 0.5)


def sionna_response(profile: str, n: int, times: int = 1, step_s: float = 0.01,
                    speed_mps: float = 1.5, seed: int = 7) -> np.ndarray:
    """Sionna's frequency response at our subcarriers, shape (n, times, F)."""
    sionna_phy.config.seed = seed
    model = TDL(profile, delay_spread=300e-9, carrier_frequency=3.5e9, min_speed=speed_mps,
                max_speed=speed_mps)
    a, tau = model(batch_size=n, num_time_steps=times, sampling_frequency=1 / step_s)
    a = a.numpy()[:, 0, 0, 0, 0].astype(complex)  # (n, L, T)
    tau = tau.numpy()[:, 0, 0].astype(float)  # (n, L)
    steer = np.exp(-2j * np.pi * tau[:, :, None] * FREQS)  # (n, L, F)
    return np.einsum("nlt,nlf->ntf", a, steer)


def ours(profile: str, n: int, seed: int = 0, **extra):
    ch = CHANNELS.get("tdl").from_dict({"profile": profile, "delay_spread_s": 300e-9,
                                        "speed_mps": 1.5, "carrier_frequency_hz": 3.5e9,
                                        "bandwidth_hz": BAND_HZ, "subcarriers": F, **extra})
    ch.reset(n, np.random.default_rng(seed))
    return ch


@pytest.mark.parametrize("profile", ["A", "C", "D"])
def test_band_gain_law_matches_sionnas(profile):
    n = 3000
    theirs = (np.abs(sionna_response(profile, n)) ** 2).mean(axis=-1)[:, 0]
    mine = ours(profile, n).gains(np.array([0.4]))[:, 0]
    assert mine.mean() == pytest.approx(theirs.mean(), abs=0.04)
    assert mine.var() == pytest.approx(theirs.var(), rel=0.12)
    assert stats.ks_2samp(mine, theirs).pvalue > 0.001


def test_flat_rate_overstatement_matches_sionnas():
    """Shannon on the band-mean gain against the mean per-subcarrier rate, TDL-C:
    the same overstatement from both models (about 11% at 0 dB, 10% at 20 dB)."""
    n = 2000
    h_theirs = sionna_response("C", n)[:, 0]
    h_mine = ours("C", n).frequency_response(np.array([0.4]))[:, 0]
    for snr_db in (0.0, 20.0):
        snr = 10 ** (snr_db / 10)
        over = []
        for h in (h_theirs, h_mine):
            g = np.abs(h) ** 2
            flat = np.log2(1 + snr * g.mean(axis=1)).mean()
            per_sc = np.log2(1 + snr * g).mean()
            over.append(flat / per_sc - 1)
        assert over[1] == pytest.approx(over[0], abs=0.01), (snr_db, over)
        assert 0.08 < over[1] < 0.14


def test_time_correlation_matches_sionnas():
    """The band gain's correlation over a lag of 0.1 / f_d (f_d = 17.5 Hz at 1.5 m/s)."""
    n, f_d = 3000, 1.5 * 3.5e9 / 299_792_458.0
    lag = 0.1 / f_d
    theirs = (np.abs(sionna_response("C", n, times=2, step_s=lag)) ** 2).mean(axis=-1)
    mine = ours("C", n).gains(np.array([0.4, 0.4 + lag]))
    rho_theirs = np.corrcoef(theirs[:, 0], theirs[:, 1])[0, 1]
    rho_mine = np.corrcoef(mine[:, 0], mine[:, 1])[0, 1]
    assert rho_mine == pytest.approx(rho_theirs, abs=0.05)
    assert 0.5 < rho_mine < 0.95
