"""The cell: client positions, large-scale gains, the fading channel and the link budget."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from channels.base import Channel
from channels.law import WindowLaw
from wirelessfl.network.link import noise_psd_w_hz, shannon_rate_bps, snr_bandwidth_product_hz
from wirelessfl.network.pathloss import PathLoss
from wirelessfl.network.placement import RandomWaypoint
from wirelessfl.network.units import dbm_to_w


@dataclass
class Cell:
    """K clients around one base station.

    Attributes
    ----------
    positions_m : ndarray, shape (K, 2)
        Client positions at the last :meth:`move_to`, metres (BS at the origin).
    pathloss : PathLoss
        Path-loss model with the clients' shadowing (and LOS state) already drawn.
    channel : Channel
        Small-scale fading of the K links (reset before use).
    mobility : RandomWaypoint or None
        Moves the clients over simulated time; ``None``: static.
    csi_error_std_db, csi_delay_s : float
        Controller CSI imperfection: log-normal error on the power gain and age.
    csi_kind : str
        How the controller plans: ``auto`` (the channel's law over the upload window
        given the CSI), ``instantaneous`` (the CSI holds for the whole upload) or
        ``statistical`` (the channel's law alone).
    """

    positions_m: np.ndarray
    pathloss: PathLoss
    channel: Channel
    tx_power_dbm: float
    bs_tx_power_dbm: float
    noise_psd_dbm_hz: float
    noise_figure_db: float
    uplink_bandwidth_hz: float
    downlink_bandwidth_hz: float
    mobility: RandomWaypoint | None = None
    csi_error_std_db: float = 0.0
    csi_delay_s: float = 0.0
    csi_kind: str = "auto"
    csi_rng: np.random.Generator | None = None
    gain_db: np.ndarray = field(init=False)

    lazy = False

    def __post_init__(self) -> None:
        self.gain_db = self.pathloss.gain_db(self.distance_m)

    @property
    def count(self) -> int:
        """K, the number of clients."""
        return len(self.positions_m)

    def forget_before(self, t_s: float) -> None:
        """Nothing before ``t_s`` is asked again of the channel."""
        self.channel.forget_before(t_s)

    def sample(self, n: int, seed: int) -> tuple[Cell, np.ndarray]:
        """The cell and clients that population-wide estimates (``validate``'s expected
        latency, the budget's lower bound, TSFA's offline stage) are computed over:
        every client, in this cell (``n`` and ``seed`` serve a lazy population)."""
        return self, np.arange(self.count)

    @property
    def distance_m(self) -> np.ndarray:
        return np.linalg.norm(self.positions_m, axis=1)

    @property
    def n0_w_hz(self) -> float:
        return noise_psd_w_hz(self.noise_psd_dbm_hz, self.noise_figure_db)

    @property
    def tx_power_w(self) -> float:
        return float(dbm_to_w(self.tx_power_dbm))

    def move_to(self, t_s: float) -> None:
        """Move mobile clients to their positions at ``t_s`` and update the gains."""
        if self.mobility is not None:
            self.positions_m = self.mobility.positions(t_s)
            self.gain_db = self.pathloss.gain_db(self.distance_m)

    def uplink_c_hz(self, links: np.ndarray, fading=1.0) -> np.ndarray:
        """Uplink ``c_k = p beta_k g_k / N0`` (Hz); ``fading=1``: the large-scale part."""
        return snr_bandwidth_product_hz(self.tx_power_dbm, self.gain_db[links], fading,
                                        self.n0_w_hz)

    def subband_fading_at(self, t_s: float) -> np.ndarray:
        """Sub-band gains of all K links at ``t_s``, shape (K, Q) (Q = 1: flat)."""
        return self.channel.subband_gains(np.array([t_s]))[:, 0, :]

    def estimated_csi(self, t_s: float) -> np.ndarray:
        """The CSI the base station holds at ``t_s``, per sub-band, shape (K, Q).

        The true gains ``csi_delay_s`` earlier (outdated CSI), times a log-normal
        estimation error ``10^(e / 10)``, ``e ~ N(0, csi_error_std_db^2)``, one per link
        (a sub-band's estimate shares its link's error). With statistical CSI, the mean
        gain 1 (the controller knows the large-scale gain only). The error draw is
        taken in every mode, so the CSI stream does not depend on the mode.
        """
        g = self.subband_fading_at(max(t_s - self.csi_delay_s, 0.0))
        if self.csi_error_std_db > 0:
            rng = self.csi_rng if self.csi_rng is not None else np.random.default_rng(0)
            g = g * 10 ** (rng.standard_normal(len(g)) * self.csi_error_std_db / 10)[:, None]
        if self.csi_kind == "statistical":
            return np.ones((len(self.distance_m), 1))
        return g

    def uplink_law(self, links: np.ndarray, t_s: float, estimate: np.ndarray) -> WindowLaw:
        """The planner's law of the selected links' gains from ``t_s`` on, times from ``t_s``.

        ``estimate`` is :meth:`estimated_csi` at ``t_s`` for these links (measured
        ``csi_delay_s`` earlier), shape (n, Q), or (n,) for a flat channel.
        """
        links = np.asarray(links)
        estimate = np.asarray(estimate, dtype=float)
        if estimate.ndim == 2 and estimate.shape[1] == 1:
            estimate = estimate[:, 0]
        if self.csi_kind == "instantaneous":
            law = WindowLaw.known(estimate)
        elif self.csi_kind == "statistical":
            law = self.channel.stationary_law(self.channel.n_links, t_s).take(links)
        else:
            full = np.ones((self.channel.n_links, *estimate.shape[1:]))
            full[links] = estimate
            law = self.channel.window_law(full, max(t_s - self.csi_delay_s, 0.0),
                                          t_s).take(links)
        return law.shifted(t_s)

    def uplink_path_gains(self, links: np.ndarray, t_s: float, estimate: np.ndarray,
                          edges_s: np.ndarray, n_paths: int, rng: np.random.Generator
                          ) -> np.ndarray:
        """Sample paths of the selected links' gains over the cells ``edges_s`` (relative
        to ``t_s``), as the planner may believe them (:meth:`uplink_law`'s CSI kinds),
        shape (n, n_paths, cells), or (n, n_paths, cells, Q) for a channel with Q > 1
        sub-bands."""
        links = np.asarray(links)
        est = np.asarray(estimate, dtype=float)
        if est.ndim == 2 and est.shape[1] == 1:
            est = est[:, 0]
        mids = t_s + 0.5 * (edges_s[:-1] + edges_s[1:])
        if self.csi_kind == "instantaneous":
            shape = (len(links), n_paths, mids.size, *est.shape[1:])
            g = np.broadcast_to(est[:, None, None], shape).copy()
        else:
            known = None if self.csi_kind == "statistical" else est
            g = self.channel.sample_paths(links, known, max(t_s - self.csi_delay_s, 0.0), mids,
                                          n_paths, rng)
        return g

    def broadcast_time_s(self, bits: float, links: np.ndarray, t_s: float) -> float:
        """Downlink broadcast of ``bits`` at the rate of the worst selected client.

        The base station sends over the whole downlink band with its own power; the
        gain is the uplink's at ``t_s`` (reciprocity, held for the broadcast).
        """
        c = snr_bandwidth_product_hz(self.bs_tx_power_dbm, self.gain_db[links][:, None],
                                     self.subband_fading_at(t_s)[links], self.n0_w_hz)
        rate = float(np.min(shannon_rate_bps(self.downlink_bandwidth_hz, c).mean(axis=1)))
        return bits / rate if rate > 0 else float("inf")
