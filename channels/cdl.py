"""3GPP TR 38.901 clustered-delay-line fading (CDL-A to CDL-E): wideband, time-varying,
with an antenna array at the base station.

Each link's uplink is the profile's ``N`` clusters (TR 38.901 Section 7.7.1, Tables
7.7.1-1 to 7.7.1-5) at delays ``tau_n = DS * tau_n^norm`` with powers ``P_n`` (scaled to
sum to 1), each of ``M = 20`` rays whose angles spread around the cluster's by the
offsets of Table 7.5-3 times the cluster spreads (equation 7.7-0a). For the uplink the
terminal transmits: the rays leave it at the table's arrival angles (AOA, ZOA) and reach
the base station at its departure angles (AOD, ZOD). Per link, drawn at :meth:`CDL.reset`:

* the random coupling of the rays within each cluster (Step 8 of Section 7.5): the
  offsets of the four angles are permuted independently;
* a uniform initial phase per ray (single, vertical polarisation with isotropic
  elements, so the cross-polar terms and the XPR play no part);
* the terminal's horizontal direction of travel ``phi_v``, uniform.

Ray ``r`` of cluster ``n`` reaches base-station antenna ``u`` with

    a_{r,u}(t) = sqrt(P_n / M) exp(j (Phi_r + 2 pi f_d sin(theta_r) cos(phi_r - phi_v) t))
                 exp(j 2 pi d (c_u sin(theta'_r) sin(phi'_r) + v_u cos(theta'_r)))

(Section 7.5, equation 7.5-22 with isotropic elements): ``theta_r, phi_r`` the ray's
zenith and azimuth at the terminal, ``theta'_r, phi'_r`` at the base station, whose
array of ``bs_rows x bs_columns`` elements at spacing ``d`` wavelengths has element
``u`` in column ``c_u`` (horizontal) and row ``v_u`` (vertical). CDL-D and CDL-E add
the specular line-of-sight ray (the table's first entry) with its own power (their
K-factors, 13.3 and 22 dB), angles and a uniform phase. The response at subcarrier
offset ``f_k`` is ``H_{k,u}(t) = sum_n exp(-j 2 pi f_k tau_n) sum_{r in n} a_{r,u}(t)``,
``E|H_{k,u}|^2 = 1``.

The base station combines its antennas by maximum ratio, so the gain of subcarrier k
is ``p_k = (1/U) sum_u |H_{k,u}|^2``, normalised to unit mean: the array brings
diversity (less fading), not its array gain ``10 log10 U`` dB, which belongs in the
link budget (``radio.tx_power_dbm`` or the path loss) if wanted. :meth:`CDL.gains` is
the band mean of ``p_k`` and :meth:`CDL.subband_gains` the means of equal bins of the
sorted ``p_k`` (:mod:`channels.wideband`).

The tables are those of TR 38.901 V16.1 (unchanged in V19.2), as Sionna ships them;
``tests/test_cdl.py`` checks the model against closed forms and, with the ``sionna``
extra installed, against Sionna's CDL.

numpy only, evaluated lazily at any time from the parameters drawn at :meth:`reset`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from pydantic import Field
from scipy.special import j0

from channels.base import register_channel
from channels.phasors import PhasorTable
from channels.wideband import CHUNK_ELEMENTS, Wideband, WidebandParams

#: Table 7.5-3: ray offset angles of a cluster with unit rms angle spread
RAY_OFFSETS = np.array([0.0447, -0.0447, 0.1413, -0.1413, 0.2492, -0.2492, 0.3715, -0.3715,
                        0.5129, -0.5129, 0.6797, -0.6797, 0.8844, -0.8844, 1.1481, -1.1481,
                        1.5195, -1.5195, 2.1551, -2.1551])


class CDLProfile(NamedTuple):
    """One CDL table: normalised delays, powers (dB) and cluster angles (degrees, in
    downlink terms: departure at the base station); the cluster rms spreads
    ``(c_ASD, c_ASA, c_ZSD, c_ZSA)`` in degrees. For a LOS profile, entry 0 is the
    specular ray and entry 1 the cluster at the same delay."""

    los: bool
    spreads_deg: tuple[float, float, float, float]
    delays: tuple[float, ...]
    powers: tuple[float, ...]
    aod: tuple[float, ...]
    aoa: tuple[float, ...]
    zod: tuple[float, ...]
    zoa: tuple[float, ...]


#: TR 38.901 Tables 7.7.1-1 to 7.7.1-5
PROFILES: dict[str, CDLProfile] = {
    "A": CDLProfile(
        los=False, spreads_deg=(5.0, 11.0, 3.0, 3.0),
        delays=(0.0, 0.3819, 0.4025, 0.5868, 0.461, 0.5375, 0.6708, 0.575, 0.7618, 1.5375, 1.8978,
                2.2242, 2.1718, 2.4942, 2.5119, 3.0582, 4.081, 4.4579, 4.5695, 4.7966, 5.0066,
                5.3043, 9.6586),
        powers=(-13.4, 0.0, -2.2, -4.0, -6.0, -8.2, -9.9, -10.5, -7.5, -15.9, -6.6, -16.7, -12.4,
                -15.2, -10.8, -11.3, -12.7, -16.2, -18.3, -18.9, -16.6, -19.9, -29.7),
        aod=(-178.1, -4.2, -4.2, -4.2, 90.2, 90.2, 90.2, 121.5, -81.7, 158.4, -83.0, 134.8, -153.0,
             -172.0, -129.9, -136.0, 165.4, 148.4, 132.7, -118.6, -154.1, 126.5, -56.2),
        aoa=(51.3, -152.7, -152.7, -152.7, 76.6, 76.6, 76.6, -1.8, -41.9, 94.2, 51.9, -115.9, 26.6,
             76.6, -7.0, -23.0, -47.2, 110.4, 144.5, 155.3, 102.0, -151.8, 55.2),
        zod=(50.2, 93.2, 93.2, 93.2, 122.0, 122.0, 122.0, 150.2, 55.2, 26.4, 126.4, 171.6, 151.4,
             157.2, 47.2, 40.4, 43.3, 161.8, 10.8, 16.7, 171.7, 22.7, 144.9),
        zoa=(125.4, 91.3, 91.3, 91.3, 94.0, 94.0, 94.0, 47.1, 56.0, 30.1, 58.8, 26.0, 49.2, 143.1,
             117.4, 122.7, 123.2, 32.6, 27.2, 15.2, 146.0, 150.7, 156.1),
    ),
    "B": CDLProfile(
        los=False, spreads_deg=(10.0, 22.0, 3.0, 7.0),
        delays=(0.0, 0.1072, 0.2155, 0.2095, 0.287, 0.2986, 0.3752, 0.5055, 0.3681, 0.3697, 0.57,
                0.5283, 1.1021, 1.2756, 1.5474, 1.7842, 2.0169, 2.8294, 3.0219, 3.6187, 4.1067,
                4.279, 4.7834),
        powers=(0.0, -2.2, -4.0, -3.2, -9.8, -1.2, -3.4, -5.2, -7.6, -3.0, -8.9, -9.0, -4.8, -5.7,
                -7.5, -1.9, -7.6, -12.2, -9.8, -11.4, -14.9, -9.2, -11.3),
        aod=(9.3, 9.3, 9.3, -34.1, -65.4, -11.4, -11.4, -11.4, -67.2, 52.5, -72.0, 74.3, -52.2,
             -50.5, 61.4, 30.6, -72.5, -90.6, -77.6, -82.6, -103.6, 75.6, -77.6),
        aoa=(-173.3, -173.3, -173.3, 125.5, -88.0, 155.1, 155.1, 155.1, -89.8, 132.1, -83.6, 95.3,
             103.7, -87.8, -92.5, -139.1, -90.6, 58.6, -79.0, 65.8, 52.7, 88.7, -60.4),
        zod=(105.8, 105.8, 105.8, 115.3, 119.3, 103.2, 103.2, 103.2, 118.2, 102.0, 100.4, 98.3,
             103.4, 102.5, 101.4, 103.0, 100.0, 115.2, 100.5, 119.6, 118.7, 117.8, 115.7),
        zoa=(78.9, 78.9, 78.9, 63.3, 59.9, 67.5, 67.5, 67.5, 82.6, 66.3, 61.6, 58.0, 78.2, 82.0,
             62.4, 78.0, 60.9, 82.9, 60.8, 57.3, 59.9, 60.1, 62.3),
    ),
    "C": CDLProfile(
        los=False, spreads_deg=(2.0, 15.0, 3.0, 7.0),
        delays=(0.0, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.656, 0.6584, 0.7935, 0.8213,
                0.9336, 1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077, 6.3065,
                6.6374, 7.0427, 8.6523),
        powers=(-4.4, -1.2, -3.5, -5.2, -2.5, 0.0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1, -5.1,
                -6.8, -8.7, -13.2, -13.9, -13.9, -15.8, -17.1, -16.0, -15.7, -21.6, -22.8),
        aod=(-46.6, -22.8, -22.8, -22.8, -40.7, 0.3, 0.3, 0.3, 73.1, -64.5, 80.2, -97.1, -55.3,
             -64.3, -78.5, 102.7, 99.2, 88.8, -101.9, 92.2, 93.3, 106.6, 119.5, -123.8),
        aoa=(-101.0, 120.0, 120.0, 120.0, -127.5, 170.4, 170.4, 170.4, 55.4, 66.5, -48.1, 46.9,
             68.1, -68.7, 81.5, 30.7, -16.4, 3.8, -13.7, 9.7, 5.6, 0.7, -21.9, 33.6),
        zod=(97.2, 98.6, 98.6, 98.6, 100.6, 99.2, 99.2, 99.2, 105.2, 95.3, 106.1, 93.5, 103.7,
             104.2, 93.0, 104.2, 94.9, 93.1, 92.2, 106.7, 93.0, 92.9, 105.2, 107.8),
        zoa=(87.6, 72.1, 72.1, 72.1, 70.1, 75.3, 75.3, 75.3, 67.4, 63.8, 71.4, 60.5, 90.6, 60.1,
             61.0, 100.7, 62.3, 66.7, 52.9, 61.8, 51.9, 61.7, 58.0, 57.0),
    ),
    "D": CDLProfile(
        los=True, spreads_deg=(5.0, 8.0, 3.0, 3.0),
        delays=(0.0, 0.0, 0.035, 0.612, 1.363, 1.405, 1.804, 2.596, 1.775, 4.042, 7.937, 9.424,
                9.708, 12.525),
        powers=(-0.2, -13.5, -18.8, -21.0, -22.8, -17.9, -20.1, -21.9, -22.9, -27.8, -23.6, -24.8,
                -30.0, -27.7),
        aod=(0.0, 0.0, 89.2, 89.2, 89.2, 13.0, 13.0, 13.0, 34.6, -64.5, -32.9, 52.6, -132.1, 77.2),
        aoa=(-180.0, -180.0, 89.2, 89.2, 89.2, 163.0, 163.0, 163.0, -137.0, 74.5, 127.7, -119.6,
             -9.1, -83.8),
        zod=(98.5, 98.5, 85.5, 85.5, 85.5, 97.5, 97.5, 97.5, 98.5, 88.4, 91.3, 103.8, 80.3, 86.5),
        zoa=(81.5, 81.5, 86.9, 86.9, 86.9, 79.4, 79.4, 79.4, 78.2, 73.6, 78.3, 87.0, 70.6, 72.9),
    ),
    "E": CDLProfile(
        los=True, spreads_deg=(5.0, 11.0, 3.0, 7.0),
        delays=(0.0, 0.0, 0.5133, 0.544, 0.563, 0.544, 0.7112, 1.9092, 1.9293, 1.9589, 2.6426,
                3.7136, 5.4524, 12.0034, 20.6419),
        powers=(-0.03, -22.03, -15.8, -18.1, -19.8, -22.9, -22.4, -18.6, -20.8, -22.6, -22.3,
                -25.6, -20.2, -29.8, -29.2),
        aod=(0.0, 0.0, 57.5, 57.5, 57.5, -20.1, 16.2, 9.3, 9.3, 9.3, 19.0, 32.7, 0.5, 55.9, 57.6),
        aoa=(-180.0, -180.0, 18.2, 18.2, 18.2, 101.8, 112.9, -155.5, -155.5, -155.5, -143.3, -94.7,
             147.0, -36.2, -26.0),
        zod=(99.6, 99.6, 104.2, 104.2, 104.2, 99.4, 100.8, 98.8, 98.8, 98.8, 100.8, 96.4, 98.9,
             95.6, 104.6),
        zoa=(80.4, 80.4, 80.4, 80.4, 80.4, 80.8, 86.3, 82.7, 82.7, 82.7, 82.9, 88.0, 81.0, 88.6,
             78.3),
    ),
}


class CDLParams(WidebandParams):
    profile: Literal["A", "B", "C", "D", "E"] = Field(
        "C", description="TR 38.901 CDL profile (A-C: NLOS, D-E: LOS)")
    bs_rows: int = Field(1, ge=1, le=16, description="base-station array rows (vertical)")
    bs_columns: int = Field(4, ge=1, le=64,
                            description="base-station array columns (horizontal)")
    spacing_wavelengths: float = Field(0.5, gt=0, le=10,
                                       description="element spacing, wavelengths")


def rays(profile: str) -> dict[str, np.ndarray]:
    """The profile's rays before coupling, flattened cluster by cluster.

    Returns
    -------
    dict of ndarray, shape (R,)
        ``cluster`` (index into the table's entries), ``power`` (each ray's share,
        summing to 1), ``offset`` (the ray's offset from Table 7.5-3, 0 for a specular
        ray) and the cluster angles ``aod, aoa, zod, zoa`` in radians.
    """
    p = PROFILES[profile]
    powers = 10.0 ** (np.asarray(p.powers) / 10.0)
    powers /= powers.sum()
    n = len(powers)
    per = np.full(n, RAY_OFFSETS.size)
    if p.los:
        per[0] = 1
    cluster = np.repeat(np.arange(n), per)
    offset = np.concatenate([np.zeros(1) if k == 1 else RAY_OFFSETS for k in per])
    out = {"cluster": cluster, "power": powers[cluster] / per[cluster], "offset": offset}
    for key in ("aod", "aoa", "zod", "zoa"):
        out[key] = np.deg2rad(np.asarray(getattr(p, key)))[cluster]
    return out


@register_channel("cdl")
class CDL(Wideband):
    """TR 38.901 CDL fading with a base-station array (see the module docstring).

    The band's bandwidth defaults to the scenario's ``radio.uplink_bandwidth_hz``.
    """

    Params = CDLParams

    def __init__(self, params: CDLParams | None = None) -> None:
        super().__init__(params)
        p = self.params
        self.rays = rays(p.profile)
        table = PROFILES[p.profile]
        self.delays_s = p.delay_spread_s * np.asarray(table.delays)
        self.powers = 10.0 ** (np.asarray(table.powers) / 10.0)
        self.powers /= self.powers.sum()
        self._set_band(self.delays_s)  # clusters onto subcarriers (N, F), Gram (N, N)
        #: first ray of each cluster (rays are contiguous per cluster)
        self._starts = np.flatnonzero(np.diff(self.rays["cluster"], prepend=-1))
        self._ends = np.append(self._starts[1:], self.rays["cluster"].size)
        rows, cols = np.meshgrid(np.arange(p.bs_rows), np.arange(p.bs_columns), indexing="ij")
        self._rows, self._cols = rows.ravel(), cols.ravel()  # (U,)

    @property
    def antennas(self) -> int:
        return self.params.bs_rows * self.params.bs_columns

    @property
    def response_size(self) -> int:
        return len(self.frequencies_hz) * self.antennas

    def reset(self, n_links: int, rng: np.random.Generator) -> None:
        self.n_links = n = int(n_links)
        r, p, c = self.rays, self.params, self.rays["cluster"]
        spread = dict(zip(("aod", "aoa", "zod", "zoa"), np.deg2rad(PROFILES[p.profile].spreads_deg),
                          strict=True))
        angles = {}
        for key in ("aod", "aoa", "zod", "zoa"):  # random coupling: offsets permuted per cluster
            perm = np.argsort(rng.random((n, r["offset"].size)) + c, axis=1)
            angles[key] = r[key] + spread[key] * r["offset"][perm]
        self._phase = rng.uniform(0, 2 * np.pi, (n, c.size))
        travel = rng.uniform(0, 2 * np.pi, (n, 1))
        # uplink: the terminal sends at the table's arrival angles
        self._omega = (2 * np.pi * self.f_d * np.sin(angles["zoa"])
                       * np.cos(angles["aoa"] - travel))  # (n, R), rad/s
        zen, az = angles["zod"], angles["aod"]  # at the base station
        arg = 2 * np.pi * p.spacing_wavelengths * (
            self._cols * (np.sin(zen) * np.sin(az))[..., None]
            + self._rows * np.cos(zen)[..., None])  # (n, R, U)
        self._steer_a = np.sqrt(r["power"])[:, None] * np.exp(1j * arg)
        self._table = PhasorTable(self._omega, self._phase, self.hold_interval_s)

    def time_correlation(self, lag_s: np.ndarray) -> np.ndarray:
        """``sum_r P_r J0(2 pi f_d sin(theta_r) s)``: a ray's Doppler averaged over the
        direction of travel, weighted by power (zenith offsets at their table values)."""
        lag = np.asarray(lag_s, dtype=float)
        r = self.rays
        zen = r["zoa"] + np.deg2rad(PROFILES[self.params.profile].spreads_deg[3]) * r["offset"]
        return (r["power"] * j0(2 * np.pi * self.f_d * np.sin(zen) * lag[..., None])).sum(-1)

    def clusters(self, times_s: np.ndarray) -> np.ndarray:
        """Each cluster's coefficient at each antenna, shape (n_links, n_times, N, U)."""
        t = np.asarray(times_s, dtype=float)
        e = self._table(t)  # (n, T, R)
        out = np.empty((*e.shape[:2], len(self._starts), self.antennas), dtype=complex)
        for n, (a, b) in enumerate(zip(self._starts, self._ends, strict=True)):
            out[:, :, n] = e[:, :, a:b] @ self._steer_a[:, a:b]  # sum of the cluster's rays
        return out

    def _chunks(self, times_s: np.ndarray):
        t = np.asarray(times_s, dtype=float)
        per = max(self.n_links * self.rays["cluster"].size * self.antennas, 1)
        step = max(1, CHUNK_ELEMENTS // per)
        for s in range(0, t.size, step):
            yield s, self.clusters(t[s : s + step])

    def response(self, times_s: np.ndarray) -> np.ndarray:
        """``H_{k,u}(t)``, shape (n_links, n_times, F, U), complex."""
        t = np.asarray(times_s, dtype=float)
        out = np.empty((self.n_links, t.size, len(self.frequencies_hz), self.antennas),
                       dtype=complex)
        for s, c in self._chunks(t):
            out[:, s : s + c.shape[1]] = np.swapaxes(np.swapaxes(c, 2, 3) @ self._steer, 2, 3)
        return out

    def gains(self, times_s: np.ndarray) -> np.ndarray:
        """The band's mean combined gain ``(1/F) sum_k p_k``, shape (n_links, n_times):
        the quadratic form ``(1/U) sum_u c_u^H G c_u`` of the cluster coefficients with
        ``G = (1/F) sum_k s_k s_k^H``, without forming H."""
        t = np.asarray(times_s, dtype=float)
        out = np.empty((self.n_links, t.size))
        for s, c in self._chunks(t):
            g = np.swapaxes(np.swapaxes(c, 2, 3) @ self._gram, 2, 3)
            out[:, s : s + c.shape[1]] = (c.conj() * g).real.sum(axis=2).mean(axis=-1)
        return out
