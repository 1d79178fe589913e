"""3GPP TR 38.901 tapped-delay-line fading (TDL-A to TDL-E), wideband, time-varying.

Each link's impulse response is ``L`` taps at delays ``tau_l = DS * tau_l^norm`` with
normalised powers ``P_l`` (TR 38.901 Section 7.7.2, Tables 7.7.2-1 to 7.7.2-5; the
powers are scaled to sum to 1). Every non-line-of-sight tap is an independent Rayleigh
process with the classical (Jakes) Doppler spectrum, a sum of sinusoids as in
:mod:`channels.jakes`; a link's ``num_sinusoids`` sinusoids are shared among its taps in
proportion to their power (at least one each), so every sinusoid carries about the
same power and a subcarrier's response is as Gaussian as a Jakes link with as many.
TDL-D and TDL-E start with a line-of-sight tap: a specular component of power
``P_LOS`` (Doppler ``f_d cos(theta)``, arrival angle ``theta`` and phase uniform per
link) plus a Rayleigh part at the same delay, in the ratio of the table's K-factor
(13.3 dB and 22 dB).

The frequency response at ``F`` subcarrier frequencies ``f_k`` spread evenly over the
band (offsets from the carrier, hertz) is

    H_k(t) = sum_l sqrt(P_l) h_l(t) exp(-j 2 pi f_k tau_l),

``E|H_k|^2 = 1`` and ``E[H_k H_k'^*] = sum_l P_l exp(-j 2 pi (f_k - f_k') tau_l)``.
:meth:`TDL.gains` is the band's mean power gain ``(1/F) sum_k |H_k|^2`` (unit mean), the
gain every planner and the timeline see; :meth:`TDL.subband_gains` sorts the ``F``
subcarrier gains and returns the means of ``subbands`` equal bins: a client whose
bandwidth spreads over the band gets, by the concavity of Shannon's rate, a rate that
the flat band gain overstates (measured in ``docs/channels.md``).

numpy only, evaluated lazily at any time from the parameters drawn at :meth:`reset`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field
from scipy.special import j0

from channels.base import register_channel
from channels.phasors import PhasorTable
from channels.wideband import Wideband, WidebandParams

#: TR 38.901 Table 7.7.2-1..5: (normalised delays, powers in dB); for D and E the first
#: two entries are the LOS tap's specular part and its Rayleigh part, at delay 0
PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "A": ((0.0, 0.3819, 0.4025, 0.5868, 0.4610, 0.5375, 0.6708, 0.5750, 0.7618, 1.5375,
           1.8978, 2.2242, 2.1718, 2.4942, 2.5119, 3.0582, 4.0810, 4.4579, 4.5695, 4.7966,
           5.0066, 5.3043, 9.6586),
          (-13.4, 0.0, -2.2, -4.0, -6.0, -8.2, -9.9, -10.5, -7.5, -15.9, -6.6, -16.7, -12.4,
           -15.2, -10.8, -11.3, -12.7, -16.2, -18.3, -18.9, -16.6, -19.9, -29.7)),
    "B": ((0.0, 0.1072, 0.2155, 0.2095, 0.2870, 0.2986, 0.3752, 0.5055, 0.3681, 0.3697,
           0.5700, 0.5283, 1.1021, 1.2756, 1.5474, 1.7842, 2.0169, 2.8294, 3.0219, 3.6187,
           4.1067, 4.2790, 4.7834),
          (0.0, -2.2, -4.0, -3.2, -9.8, -1.2, -3.4, -5.2, -7.6, -3.0, -8.9, -9.0, -4.8, -5.7,
           -7.5, -1.9, -7.6, -12.2, -9.8, -11.4, -14.9, -9.2, -11.3)),
    "C": ((0.0, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.6560, 0.6584, 0.7935,
           0.8213, 0.9336, 1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077,
           6.3065, 6.6374, 7.0427, 8.6523),
          (-4.4, -1.2, -3.5, -5.2, -2.5, 0.0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1, -5.1,
           -6.8, -8.7, -13.2, -13.9, -13.9, -15.8, -17.1, -16.0, -15.7, -21.6, -22.8)),
    "D": ((0.0, 0.0, 0.035, 0.612, 1.363, 1.405, 1.804, 2.596, 1.775, 4.042, 7.937, 9.424,
           9.708, 12.525),
          (-0.2, -13.5, -18.8, -21.0, -22.8, -17.9, -20.1, -21.9, -22.9, -27.8, -23.6, -24.8,
           -30.0, -27.7)),
    "E": ((0.0, 0.0, 0.5133, 0.5440, 0.5630, 0.5440, 0.7112, 1.9092, 1.9293, 1.9589, 2.6426,
           3.7136, 5.4524, 12.0034, 20.6519),
          (-0.03, -22.03, -15.8, -18.1, -19.8, -22.9, -22.4, -18.6, -20.8, -22.6, -22.3, -25.6,
           -20.2, -29.8, -29.2)),
}
LOS_PROFILES = frozenset({"D", "E"})


def delay_profile(profile: str, delay_spread_s: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Tap delays (s) and powers (linear, summing to 1) of a TDL profile.

    Returns
    -------
    delays_s, powers : ndarray, shape (L,)
        For the LOS profiles (D, E) entry 0 is the specular component and entry 1 the
        Rayleigh part of the first tap (both at delay 0).
    los : bool
        Whether entry 0 is a specular (line-of-sight) component.
    """
    norm, db = PROFILES[profile]
    powers = 10.0 ** (np.asarray(db) / 10.0)
    return delay_spread_s * np.asarray(norm), powers / powers.sum(), profile in LOS_PROFILES


def rms_delay_spread_s(delays_s: np.ndarray, powers: np.ndarray) -> float:
    """Power-weighted rms delay spread ``sqrt(sum P tau^2 - (sum P tau)^2)`` (sum P = 1)."""
    mean = float(np.sum(powers * delays_s))
    return float(np.sqrt(max(np.sum(powers * delays_s**2) - mean**2, 0.0)))


def sinusoids_per_tap(powers: np.ndarray, total: int, los: bool) -> np.ndarray:
    """How many of ``total`` sinusoids each tap gets: in proportion to its power, at
    least one each (largest remainders); a specular (LOS) entry 0 gets exactly one.

    Every sinusoid then carries about ``1 / total`` of the power, so a subcarrier's
    response is as close to Gaussian as a ``total``-sinusoid Jakes link.
    """
    n = len(powers)
    counts = np.ones(n, dtype=np.int64)
    free = np.ones(n, dtype=bool)
    if los:
        free[0] = False
    share = (total - n) * powers * free / powers[free].sum()
    counts += np.floor(share).astype(np.int64)
    left = total - counts.sum()
    order = np.argsort(-(share - np.floor(share)) * free, kind="stable")
    counts[order[:left]] += 1
    return counts


class TDLParams(WidebandParams):
    profile: Literal["A", "B", "C", "D", "E"] = Field(
        "C", description="TR 38.901 TDL profile (A-C: NLOS, D-E: LOS)")
    num_sinusoids: int = Field(64, ge=32, le=4096,
                               description="sinusoids per link, shared by the taps")


@register_channel("tdl")
class TDL(Wideband):
    """TR 38.901 TDL fading: wideband, Doppler per tap (see the module docstring).

    The band's bandwidth defaults to the scenario's ``radio.uplink_bandwidth_hz``
    (20 MHz when the model is built alone).
    """

    Params = TDLParams

    def __init__(self, params: TDLParams | None = None) -> None:
        super().__init__(params)
        p = self.params
        self.delays_s, self.powers, self.los = delay_profile(p.profile, p.delay_spread_s)
        # steering of each tap onto the subcarriers (L, F); the taps' powers are in the
        # sinusoids' amplitudes (mix)
        self._set_band(self.delays_s)
        # sinusoids: tap_of[i] is the tap sinusoid i belongs to; mix (M, L) holds each
        # sinusoid's amplitude sqrt(P_l / n_l) in its tap's column
        counts = sinusoids_per_tap(self.powers, p.num_sinusoids, self.los)
        self.tap_of = np.repeat(np.arange(len(self.powers)), counts)
        self._mix = np.zeros((len(self.tap_of), len(self.powers)))
        self._mix[np.arange(len(self.tap_of)), self.tap_of] = np.sqrt(
            self.powers / counts)[self.tap_of]

    def reset(self, n_links: int, rng: np.random.Generator) -> None:
        self.n_links = int(n_links)
        m = len(self.tap_of)
        alpha = rng.uniform(0, 2 * np.pi, (self.n_links, m))
        self._omega = 2 * np.pi * self.f_d * np.cos(alpha)  # (links, M), rad/s
        self._phi = rng.uniform(0, 2 * np.pi, (self.n_links, m))
        self._table = PhasorTable(self._omega, self._phi, self.hold_interval_s)

    def _sinusoids(self, t: np.ndarray) -> np.ndarray:
        """``exp(j (omega_i t + phi_i))``, shape (n_links, n_times, M)."""
        return self._table(t)

    def _chunks(self, times_s: np.ndarray):
        t = np.asarray(times_s, dtype=float)
        chunk = max(1, 2_000_000 // max(self.n_links * len(self.tap_of), 1))
        for s in range(0, t.size, chunk):  # bounded memory: (links, chunk, M)
            yield s, self._sinusoids(t[s : s + chunk]) @ self._mix  # (links, T, L)

    def taps(self, times_s: np.ndarray) -> np.ndarray:
        """Unit-power tap processes ``h_l(t)``, shape (n_links, n_times, L), complex.

        Tap l sums its ``n_l`` sinusoids ``n_l^(-1/2) exp(j (omega_i t + phi_i))``, so
        ``E[h_l(t) h_l^*(t + dt)] = J0(2 pi f_d dt)``; the specular part of a LOS tap
        is one sinusoid ``exp(j (2 pi f_d cos(theta) t + phi))``.
        """
        t = np.asarray(times_s, dtype=float)
        out = np.empty((self.n_links, t.size, len(self.powers)), dtype=complex)
        for s, h in self._chunks(t):
            out[:, s : s + h.shape[1]] = h / np.sqrt(self.powers)
        return out

    def frequency_response(self, times_s: np.ndarray) -> np.ndarray:
        """``H_k(t)`` at the subcarriers, shape (n_links, n_times, F), complex."""
        t = np.asarray(times_s, dtype=float)
        out = np.empty((self.n_links, t.size, len(self.frequencies_hz)), dtype=complex)
        for s, h in self._chunks(t):
            out[:, s : s + h.shape[1]] = h @ self._steer
        return out

    def gains(self, times_s: np.ndarray) -> np.ndarray:
        """The band's mean power gain ``(1/F) sum_k |H_k(t)|^2``, shape (n_links, n_times).

        Computed as the quadratic form ``h^H G h`` of the weighted taps with
        ``G = (1/F) sum_k s_k s_k^H`` (L x L), without forming ``H``.
        """
        t = np.asarray(times_s, dtype=float)
        out = np.empty((self.n_links, t.size))
        for s, h in self._chunks(t):
            q = h @ self._gram
            out[:, s : s + h.shape[1]] = (h.real * q.real + h.imag * q.imag).sum(axis=-1)
        return out

    def response(self, times_s: np.ndarray) -> np.ndarray:
        """:meth:`frequency_response` with one receive antenna, shape (n_links, n_times, F, 1)."""
        return self.frequency_response(times_s)[..., None]

    @property
    def response_size(self) -> int:
        return len(self.frequencies_hz)

    def time_correlation(self, lag_s: np.ndarray) -> np.ndarray:
        """``J0(2 pi f_d s)``: every tap (the LOS one over its uniform angle) has Clarke's
        correlation, so the response is separable in time and frequency."""
        return j0(2 * np.pi * self.f_d * np.asarray(lag_s, dtype=float))
