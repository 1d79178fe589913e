"""Shared machinery of the wideband models (``tdl``, ``cdl``): sub-band gains from a
frequency response, and the planner's sample paths given measured sub-band gains.

A wideband model gives each link a frequency response ``H_{k,u}(t)`` at ``F``
subcarriers ``k`` and ``U`` receive antennas ``u`` (``U = 1`` for a single antenna).
The per-subcarrier power gain after maximum-ratio combining, normalised to unit mean,
is ``p_k(t) = (1/U) sum_u |H_{k,u}(t)|^2``; the model's ``Q`` sub-band gains are the
means of ``Q`` equal bins of the sorted ``p_k`` (:func:`subband_bins`).

Sample paths (:meth:`Wideband.sample_paths`) of a link given the sub-band gains
``g0_q`` measured at ``t0``, for the planner's expected finishing time:

1. a fresh realisation ``w_{k,u}(s)`` of the same model is drawn per path (lag ``s``
   from ``t0``);
2. its lag-0 response is rescaled subcarrier by subcarrier so that its sub-band gains
   are the measured ones: ``h0_{k,u} = w_{k,u}(0) sqrt(g0_q / w_q(0))`` for the
   subcarriers k of bin q (the band gain is then exactly the measured one);
3. every subcarrier and antenna is kriged from it, ``h(s) = w(s) + rho(s) (h0 - w(0))``
   with the model's time correlation ``rho(s)`` (:meth:`Wideband.time_correlation`).

For a separable Gaussian response (every tap with the same Doppler spectrum, as in
TDL) step 3 has exactly the law of ``h(s)`` given ``h(0) = h0``; steps 1-2 stand in for
the per-subcarrier phases and ordering that the sub-band gains do not reveal. At
``s = 0`` the path has the measured sub-band gains, and as ``rho -> 0`` it becomes an
unconditioned realisation.

numpy only.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from pydantic import Field, model_validator

from channels.base import Channel
from channels.jakes import DopplerParams

#: elements of the complex working arrays per chunk (bounded memory)
CHUNK_ELEMENTS = 2_000_000


def subband_bins(power: np.ndarray, q: int) -> np.ndarray:
    """Means of ``q`` equal bins of the sorted last axis of ``power``, shape (..., q)."""
    s = np.sort(power, axis=-1)
    edges = np.linspace(0, s.shape[-1], q + 1).round().astype(int)
    return np.add.reduceat(s, edges[:-1], axis=-1) / np.diff(edges)


class WidebandParams(DopplerParams):
    """The options every wideband model shares: delay spread, band and sub-bands."""

    delay_spread_s: float = Field(300e-9, ge=0, le=1e-5,
                                  description="rms delay spread DS that scales the delays, s")
    carrier_frequency_hz: float = Field(3.5e9, ge=1e8, le=1e12,
                                        description="f_c (with speed_mps)")
    bandwidth_hz: float | None = Field(
        None, gt=0, le=1e10, description="band the subcarriers span (default: the uplink's)")
    subcarriers: int = Field(64, ge=1, le=4096,
                             description="frequency samples F over the band")
    subbands: int = Field(8, ge=1, le=64,
                          description="sub-band gains Q (bins of the sorted subcarriers)")

    @model_validator(mode="after")
    def _bands(self) -> WidebandParams:
        if self.subbands > self.subcarriers:
            raise ValueError(f"subbands ({self.subbands}) must not exceed subcarriers "
                             f"({self.subcarriers})")
        return self


class Wideband(Channel):
    """A channel with a frequency response per subcarrier (and receive antenna).

    Subclasses' ``Params`` extend :class:`WidebandParams`; they call :meth:`_set_band`
    with their path delays, implement :meth:`response` and :meth:`time_correlation`,
    and may override :meth:`subband_gains`. The coherence time is Jakes's rule of thumb
    ``0.423 / f_d``; the simulator holds the gain over ``Tc / 20`` (or
    ``time_resolution_s``).
    """

    correlated = True

    def _set_band(self, delays_s: np.ndarray) -> None:
        """Doppler, coherence time, sub-bands and the band's subcarriers for paths at
        ``delays_s``: the steering ``exp(-j 2 pi f_k tau_l)`` (L, F) and its Gram matrix
        ``(1/F) S S^H`` (L, L), from which the band gain is a quadratic form."""
        p = self.params
        self.f_d = p.doppler_hz
        self.coherence_time_s = 0.423 / self.f_d
        self.subbands = p.subbands
        band = p.bandwidth_hz if p.bandwidth_hz is not None else 20e6
        #: subcarrier offsets from the carrier, Hz, shape (F,)
        self.frequencies_hz = band * ((np.arange(p.subcarriers) + 0.5) / p.subcarriers - 0.5)
        self._steer = np.exp(-2j * np.pi * np.asarray(delays_s)[:, None] * self.frequencies_hz)
        self._gram = self._steer @ self._steer.conj().T / p.subcarriers

    @property
    def hold_interval_s(self) -> float:
        return self.params.time_resolution_s or self.coherence_time_s / 20

    @abstractmethod
    def response(self, times_s: np.ndarray) -> np.ndarray:
        """``H_{k,u}(t)``, shape (n_links, n_times, F, U), complex, ``E|H|^2 = 1``."""

    @abstractmethod
    def time_correlation(self, lag_s: np.ndarray) -> np.ndarray:
        """``E[H(t + s) H(t)^*]`` of one subcarrier and antenna, real, shape of ``lag_s``."""

    def subband_gains(self, times_s: np.ndarray) -> np.ndarray:
        """Means of ``subbands`` equal bins of the sorted per-subcarrier gains ``p_k``.

        Returns
        -------
        ndarray, shape (n_links, n_times, Q)
            Ascending in Q.
        """
        h = self.response(times_s)
        return subband_bins((h.real**2 + h.imag**2).mean(axis=-1), self.subbands)

    def sample_paths(self, links: np.ndarray, gain: np.ndarray | None, known_at_s: float,
                     times_s: np.ndarray, n_paths: int, rng: np.random.Generator
                     ) -> np.ndarray:
        """Sample paths of the sub-band gains of ``links`` given the sub-band gains ``gain``
        measured at ``known_at_s`` (None: nothing known), by the kriging of the module
        docstring.

        Parameters
        ----------
        gain : ndarray, shape (n, Q), or None
        times_s : ndarray, shape (T,)
            Absolute times, seconds.

        Returns
        -------
        ndarray, shape (n, n_paths, T, Q)
        """
        n, q = len(np.asarray(links)), self.subbands
        t = np.asarray(times_s, dtype=float)
        lag = t - known_at_s
        fresh = type(self)(self.params)
        fresh.reset(n * n_paths, rng)
        out = np.empty((n * n_paths, t.size, q))
        chunk = self._chunk(n * n_paths)
        if gain is None:
            for s in range(0, t.size, chunk):
                out[:, s : s + chunk] = fresh.subband_gains(lag[s : s + chunk])
            return out.reshape(n, n_paths, t.size, q)
        g0 = np.repeat(np.asarray(gain, dtype=float).reshape(n, -1), n_paths, axis=0)  # (nP, Q)
        w0 = fresh.response(np.zeros(1))[:, 0]  # (nP, F, U)
        p0 = (w0.real**2 + w0.imag**2).mean(axis=-1)  # (nP, F)
        w_q = subband_bins(p0, q)  # the fresh path's own sub-band gains, (nP, Q)
        order = np.argsort(p0, axis=-1)
        edges = np.linspace(0, p0.shape[1], q + 1).round().astype(int)
        bin_of = np.repeat(np.arange(q), np.diff(edges))  # bin of the j-th smallest
        scale = np.empty_like(p0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(w_q > 0, g0 / w_q, 0.0)
        np.put_along_axis(scale, order, ratio[:, bin_of], axis=-1)
        delta = w0 * (np.sqrt(scale)[..., None] - 1.0)  # h0 - w(0), (nP, F, U)
        rho = self.time_correlation(lag)
        for s in range(0, t.size, chunk):
            h = fresh.response(lag[s : s + chunk])  # the fresh path starts at lag 0
            h += rho[s : s + chunk][None, :, None, None] * delta[:, None]
            out[:, s : s + chunk] = subband_bins((h.real**2 + h.imag**2).mean(axis=-1), q)
        return out.reshape(n, n_paths, t.size, q)

    def _chunk(self, links: int) -> int:
        """Times per chunk so that a (links, times, F, U) response stays bounded."""
        per_time = max(links * self.response_size, 1)
        return max(1, CHUNK_ELEMENTS // per_time)

    @property
    def path_interval_s(self) -> float:
        """Planning cells of a fifth of the coherence time: a path carries F x U values
        per cell, and the planner's finishing time needs no finer grid."""
        return self.coherence_time_s / 5

    @property
    def response_size(self) -> int:
        """``F * U``: complex values of one link's response at one time."""
        return 1
