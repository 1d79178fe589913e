"""The cell: clients' large-scale gains, their fading channel and the link budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from channels.base import Channel
from wirelessfl.network.link import noise_psd_w_hz, shannon_rate_bps, snr_bandwidth_product_hz


@dataclass
class Cell:
    """K clients around one base station.

    Attributes
    ----------
    distance_m : ndarray, shape (K,)
    gain_db : ndarray, shape (K,)
        Large-scale gain (minus path loss, plus shadowing), dB.
    channel : Channel
        Small-scale fading of the K links (reset before use).
    tx_power_dbm, bs_tx_power_dbm : float
    n0_w_hz : float
        Noise PSD with the noise figure, W/Hz.
    uplink_bandwidth_hz, downlink_bandwidth_hz : float
    """

    distance_m: np.ndarray
    gain_db: np.ndarray
    channel: Channel
    tx_power_dbm: float
    bs_tx_power_dbm: float
    noise_psd_dbm_hz: float
    noise_figure_db: float
    uplink_bandwidth_hz: float
    downlink_bandwidth_hz: float

    @property
    def n0_w_hz(self) -> float:
        return noise_psd_w_hz(self.noise_psd_dbm_hz, self.noise_figure_db)

    def uplink_c_hz(self, links: np.ndarray, fading=1.0) -> np.ndarray:
        """Uplink ``c_k = p beta_k g_k / N0`` (Hz); ``fading=1``: the large-scale part."""
        return snr_bandwidth_product_hz(self.tx_power_dbm, self.gain_db[links], fading,
                                        self.n0_w_hz)

    def fading_at(self, t_s: float) -> np.ndarray:
        """Small-scale gains of all K links at time ``t_s``, shape (K,)."""
        return self.channel.gains(np.array([t_s]))[:, 0]

    def broadcast_time_s(self, bits: float, links: np.ndarray, t_s: float) -> float:
        """Downlink broadcast of ``bits`` at the rate of the worst selected client.

        The base station sends over the whole downlink band with its own power; the
        gain is the uplink's at ``t_s`` (reciprocity, held for the broadcast).
        """
        c = snr_bandwidth_product_hz(self.bs_tx_power_dbm, self.gain_db[links],
                                     self.fading_at(t_s)[links], self.n0_w_hz)
        rate = float(np.min(shannon_rate_bps(self.downlink_bandwidth_hz, c)))
        return bits / rate if rate > 0 else float("inf")
