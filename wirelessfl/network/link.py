"""FDMA link rates: Shannon capacity of a bandwidth share.

Notation (docs/wireless-model.md): client k transmits with power ``p_k`` (W) over a
large-scale gain ``beta_k`` and a small-scale gain ``g_k(t)``; the noise PSD is
``N0`` (W/Hz, noise figure included). With bandwidth ``b`` (Hz),

    R_k(b) = b log2(1 + p_k beta_k g_k / (N0 b)) = b log2(1 + c_k / b),

where ``c_k = p_k beta_k g_k / N0`` (Hz) is the client's SNR-bandwidth product.
``R_k`` is concave and increasing in ``b`` and tends to ``c_k / ln 2`` as b -> inf.
"""

from __future__ import annotations

import numpy as np

from wirelessfl.network.units import db_to_lin, dbm_to_w


def noise_psd_w_hz(noise_psd_dbm_hz: float, noise_figure_db: float = 0.0) -> float:
    """Receiver noise PSD in W/Hz: thermal PSD raised by the noise figure."""
    return float(dbm_to_w(noise_psd_dbm_hz + noise_figure_db))


def snr_bandwidth_product_hz(tx_power_dbm, gain_db, small_scale_gain, n0_w_hz: float):
    """``c = p beta g / N0`` in Hz (broadcasts over its array arguments)."""
    p_w = dbm_to_w(tx_power_dbm)
    return p_w * db_to_lin(gain_db) * np.asarray(small_scale_gain, dtype=float) / n0_w_hz


def shannon_rate_bps(bandwidth_hz, c_hz):
    """``b log2(1 + c / b)`` in bit/s; zero where the bandwidth is zero."""
    b = np.asarray(bandwidth_hz, dtype=float)
    c = np.asarray(c_hz, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = b * np.log2(1.0 + c / b)
    return np.where(b > 0, r, 0.0)
