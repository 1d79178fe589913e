"""Our `cdl` against Sionna's TR 38.901 CDL, an independent implementation.

Skipped unless the optional extra is installed (``pip install wirelessfl[sionna]``;
``make`` installs it). Sionna's uplink CDL with one isotropic, vertically polarised
terminal antenna and a single-polarised omni base-station array, seeded here; each
comparison is between two samples of the same law, with tolerances from their
sampling error.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from channels.base import CHANNELS

sionna_phy = pytest.importorskip("sionna.phy")
tr38901 = pytest.importorskip("sionna.phy.channel.tr38901")

BAND_HZ, F, FC = 18.36e6, 64, 3.5e9
FREQS = BAND_HZ * ((np.arange(F) + 0.5) / F - 0.5)


def sionna_gains(profile: str, n: int, columns: int, times: int = 1, step_s: float = 0.01,
                 seed: int = 7) -> np.ndarray:
    """Sionna's per-subcarrier combined gain ``(1/U) sum_u |H_u|^2``, shape (n, times, F)."""
    sionna_phy.config.seed = seed
    ut = tr38901.Antenna(polarization="single", polarization_type="V", antenna_pattern="omni",
                         carrier_frequency=FC)
    bs = tr38901.AntennaArray(num_rows=1, num_cols=columns, polarization="single",
                              polarization_type="V", antenna_pattern="omni",
                              carrier_frequency=FC)
    model = tr38901.CDL(profile, delay_spread=300e-9, carrier_frequency=FC, ut_array=ut,
                        bs_array=bs, direction="uplink", min_speed=1.5, max_speed=1.5)
    a, tau = model(batch_size=n, num_time_steps=times, sampling_frequency=1 / step_s)
    a = a.numpy()[:, 0, :, 0, 0].astype(complex)  # (n, U, P, T)
    tau = tau.numpy()[:, 0, 0].astype(float)  # (n, P)
    steer = np.exp(-2j * np.pi * tau[:, :, None] * FREQS)  # (n, P, F)
    h = np.einsum("nupt,npf->ntfu", a, steer)
    return (np.abs(h) ** 2).mean(axis=-1)


def ours(profile: str, n: int, columns: int, seed: int = 0):
    ch = CHANNELS.get("cdl").from_dict({"profile": profile, "delay_spread_s": 300e-9,
                                        "speed_mps": 1.5, "carrier_frequency_hz": FC,
                                        "bandwidth_hz": BAND_HZ, "subcarriers": F,
                                        "bs_columns": columns})
    ch.reset(n, np.random.default_rng(seed))
    return ch


@pytest.mark.parametrize(("profile", "columns"), [("A", 1), ("C", 4), ("D", 4), ("E", 1)])
def test_band_gain_law_matches_sionnas(profile, columns):
    n = 2000
    theirs = sionna_gains(profile, n, columns).mean(axis=-1)[:, 0]
    mine = ours(profile, n, columns).gains(np.array([0.4]))[:, 0]
    assert mine.mean() == pytest.approx(theirs.mean(), abs=0.04)
    assert mine.var() == pytest.approx(theirs.var(), rel=0.15)
    assert stats.ks_2samp(mine, theirs).pvalue > 0.001


def test_subcarrier_gain_law_matches_sionnas():
    """One subcarrier's combined gain (the array's diversity): CDL-C, 4 columns."""
    n = 2000
    theirs = sionna_gains("C", n, 4)[:, 0, F // 3]
    h = ours("C", n, 4).response(np.array([0.4]))[:, 0, F // 3]
    mine = (np.abs(h) ** 2).mean(axis=-1)
    assert mine.var() == pytest.approx(theirs.var(), rel=0.15)
    assert stats.ks_2samp(mine, theirs).pvalue > 0.001
