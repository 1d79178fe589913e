"""Time-correlated Rayleigh fading with the Jakes (Clarke) Doppler spectrum."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.special import j0

from channels.base import Channel, register_channel
from channels.law import (
    QUADRATURE_NODES,
    WindowLaw,
    equal_probability_nodes,
    exponential_nodes,
)
from channels.phasors import even_grid, sinusoids_on_grid

# the conditional law is tabulated on segments of LAW_STEP / f_d up to LAW_SPAN / f_d
# after the measurement; beyond, |J0|^2 < 0.04 and the stationary law is used
LAW_STEP, LAW_SPAN, LAW_NODES = 0.2, 3.0, 8
#: sinusoids of each sample path the planner draws (its correlation is exact for any)
PATH_SINUSOIDS = 32

SPEED_OF_LIGHT_M_S = 299_792_458.0


class DopplerParams(BaseModel):
    """The Doppler options of a time-varying model (``jakes``, ``tdl``): the maximum
    Doppler shift, or a speed and a carrier; the simulator's hold step."""

    model_config = ConfigDict(extra="forbid")
    max_doppler_hz: float | None = Field(None, gt=0, le=1e5,
                                         description="f_d; or speed + carrier")
    speed_mps: float | None = Field(None, gt=0, le=1_000, description="terminal speed v, m/s")
    carrier_frequency_hz: float = Field(3.5e9, gt=0, le=1e12,
                                        description="f_c (with speed_mps)")
    time_resolution_s: float | None = Field(
        None, ge=1e-6, le=1e6,
        description="step over which the simulator holds the gain (default Tc/20)"
    )

    @model_validator(mode="after")
    def _doppler(self) -> DopplerParams:
        if (self.max_doppler_hz is None) == (self.speed_mps is None):
            raise ValueError("give exactly one of max_doppler_hz or speed_mps")
        return self

    @property
    def doppler_hz(self) -> float:
        if self.max_doppler_hz is not None:
            return self.max_doppler_hz
        return self.speed_mps * self.carrier_frequency_hz / SPEED_OF_LIGHT_M_S


class JakesParams(DopplerParams):
    num_sinusoids: int = Field(64, ge=8, le=4096, description="paths N of the sum")


#: ``f_d tau`` at which the power correlation ``J0^2(2 pi f_d tau)`` is 1/2
HALF_POWER_CORRELATION = 0.1792


@register_channel("jakes")
class JakesRayleigh(Channel):
    """Rayleigh fading that evolves continuously in time (sum of sinusoids).

    Per link, ``h(t) = N^(-1/2) sum_n exp(j (2 pi f_d cos(alpha_n) t + phi_n))`` with
    arrival angles ``alpha_n`` and phases ``phi_n`` i.i.d. uniform on [0, 2 pi). Then
    ``E|h|^2 = 1`` and ``E[h(t) h*(t + tau)] = J0(2 pi f_d tau)`` exactly (Clarke's
    model); ``h`` tends to complex Gaussian as N grows. ``f_d = v f_c / c``. The
    coherence time is the rule of thumb ``0.423 / f_d`` (Rappaport's ``sqrt(9 / (16 pi))
    / f_d``); the power gain's correlation ``J0^2(2 pi f_d tau)`` halves at
    ``tau = 0.179 / f_d`` (:data:`HALF_POWER_CORRELATION`).
    """

    correlated = True

    Params = JakesParams

    def __init__(self, params: JakesParams | None = None) -> None:
        super().__init__(params)
        self.f_d = self.params.doppler_hz
        self.coherence_time_s = 0.423 / self.f_d

    @property
    def hold_interval_s(self) -> float:
        return self.params.time_resolution_s or self.coherence_time_s / 20

    def reset(self, n_links: int, rng: np.random.Generator) -> None:
        self.n_links = int(n_links)
        n = self.params.num_sinusoids
        alpha = rng.uniform(0, 2 * np.pi, (self.n_links, n))
        self._omega = 2 * np.pi * self.f_d * np.cos(alpha)  # (n_links, N), rad/s
        self._phi = rng.uniform(0, 2 * np.pi, (self.n_links, n))

    def complex_gains(self, times_s: np.ndarray) -> np.ndarray:
        """Complex ``h`` of shape (n_links, n_times).

        Times on an even grid (what the simulator asks: the middles of consecutive
        hold intervals) are summed by :func:`sinusoids_on_grid`, a matrix product
        that takes about ``GRID_ROW`` times fewer complex exponentials; other times term by
        term. Both give the sum to rounding.
        """
        t = np.asarray(times_s, dtype=float)
        grid = even_grid(t, float(np.max(np.abs(self._omega), initial=0.0)))
        if grid is not None:
            return sinusoids_on_grid(self._omega, self._phi, *grid) / np.sqrt(
                self._omega.shape[1])
        out = np.empty((self.n_links, t.size), dtype=complex)
        chunk = max(1, 2_000_000 // max(self.n_links * self._omega.shape[1], 1))
        for s in range(0, t.size, chunk):  # bounded memory: (n_links, N, chunk)
            ph = self._omega[:, :, None] * t[None, None, s : s + chunk] + self._phi[:, :, None]
            out[:, s : s + chunk] = np.exp(1j * ph).sum(axis=1)
        return out / np.sqrt(self._omega.shape[1])

    def gains(self, times_s: np.ndarray) -> np.ndarray:
        return np.abs(self.complex_gains(times_s)) ** 2

    def marginal_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """The Rayleigh law's exact equal-probability bin means."""
        gains, probs = exponential_nodes(QUADRATURE_NODES)
        return gains[None, :], probs[None, :]

    def sample_paths(self, links: np.ndarray, gain: np.ndarray | None, known_at_s: float,
                     times_s: np.ndarray, n_paths: int, rng: np.random.Generator
                     ) -> np.ndarray:
        """Clarke's conditional law given ``|h(0)|^2 = g0``, path by path.

        Each path is a fresh sum of :data:`PATH_SINUSOIDS` sinusoids ``w(s)`` (lag s
        from the measurement) corrected by kriging, ``h(s) = w(s) + J0(2 pi f_d s)
        (sqrt(g0) - w(0))``: for a Gaussian process this has exactly the conditional
        law of h given h(0) = sqrt(g0) (the phase of h(0) does not matter).
        """
        n = len(np.asarray(links))
        lag = np.asarray(times_s, dtype=float) - known_at_s
        alpha = rng.uniform(0, 2 * np.pi, (n, n_paths, PATH_SINUSOIDS))
        omega = 2 * np.pi * self.f_d * np.cos(alpha)
        phi = rng.uniform(0, 2 * np.pi, (n, n_paths, PATH_SINUSOIDS))
        ph = omega[..., None] * lag + phi[..., None]  # (n, P, N, T)
        w = np.empty(ph.shape, dtype=complex)
        np.cos(ph, out=w.real)
        np.sin(ph, out=w.imag)
        w = w.sum(axis=2) / np.sqrt(PATH_SINUSOIDS)  # (n, P, T)
        if gain is None:
            return np.abs(w) ** 2
        w0 = np.exp(1j * phi).sum(axis=2) / np.sqrt(PATH_SINUSOIDS)  # (n, P)
        rho = j0(2 * np.pi * self.f_d * lag)  # (T,)
        h = w + rho * (np.sqrt(np.asarray(gain, dtype=float))[:, None, None] - w0[..., None])
        return np.abs(h) ** 2

    def window_law(self, gain: np.ndarray, known_at_s: float, from_s: float) -> WindowLaw:
        """Clarke's conditional law given the gain ``g0`` measured at ``known_at_s``.

        At lag s, ``h(s) | h(0) ~ CN(rho h(0), 1 - rho^2)`` with ``rho = J0(2 pi f_d s)``,
        so ``g(s) = |rho sqrt(g0) + sqrt(1 - rho^2) w|^2``, ``w ~ CN(0, 1)`` (the phase
        of h(0) does not matter). The law is tabulated at the midpoint lag of segments
        of ``0.2 / f_d`` up to ``3 / f_d`` (8 equal-probability nodes each, from a
        512-point product rule for w), then the stationary Rayleigh law.
        """
        g0 = np.asarray(gain, dtype=float)
        n = len(g0)
        step = LAW_STEP / self.f_d
        edges = known_at_s + step * np.arange(int(round(LAW_SPAN / LAW_STEP)) + 1)
        edges = edges[edges + step > from_s]
        if edges.size < 2:
            return self.stationary_law(n, from_s)
        lo, hi = edges[:-1], edges[1:]
        rho = j0(2 * np.pi * self.f_d * (0.5 * (lo + hi) - known_at_s))  # (J,)
        # w ~ CN(0, 1) by a product rule: 32 exact exponential bin means of |w|^2 times
        # 16 equally spaced phases (exact mean power, zero mean)
        power, _ = exponential_nodes(32)
        phase = 2 * np.pi * (np.arange(16) + 0.5) / 16
        w = (np.sqrt(power)[:, None] * np.exp(1j * phase)[None, :]).ravel()  # (512,)
        mean = rho[None, :, None] * np.sqrt(g0)[:, None, None]  # (n, J, 1)
        sd = np.sqrt(1 - rho**2)[None, :, None]
        draws = np.abs(mean + sd * w[None, None, :]) ** 2  # (n, J, 512)
        gains, probs = equal_probability_nodes(draws, LAW_NODES)  # (n, J, Q)
        start = np.broadcast_to(np.maximum(lo, from_s)[None, :, None], gains.shape)
        end = np.broadcast_to(hi[None, :, None], gains.shape)
        near = WindowLaw(gains.reshape(n, -1), probs.reshape(n, -1),
                         start.reshape(n, -1).copy(), end.reshape(n, -1).copy())
        far = self.stationary_law(n, float(hi[-1]))
        return WindowLaw.concat([near, far])
