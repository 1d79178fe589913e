"""Sums of complex sinusoids ``exp(j (omega t + phi))`` on an even time grid, fast.

The simulator asks a time-varying channel for its gains at the middles of consecutive
hold intervals: an even grid ``t_k = t0 + k dt``. On a grid the phasor factors,
``exp(j (omega (t0 + (a G + b) dt) + phi)) = exp(j (omega (t0 + a G dt) + phi))
exp(j omega b dt)``, so ``m`` times cost about ``m / G + G`` complex exponentials per
sinusoid instead of ``m``, and a product each. Every phase is still computed from its
own time (no recurrence), so the error does not grow along the grid; the values
equal the term-by-term ones to rounding.
"""

from __future__ import annotations

import numpy as np

#: times a row of the factorisation spans (:func:`sinusoids_on_grid`)
GRID_ROW = 64
#: a grid is used when it moves no phase by more than GRID_PHASE_TOL radians from the
#: times asked
GRID_PHASE_TOL = 1e-9
#: elements of the (links x sinusoids x rows) intermediate held at once
CHUNK_ELEMENTS = 2_000_000


def _expj(ph: np.ndarray) -> np.ndarray:
    """``exp(j ph)`` of real phases, as cosine and sine (faster than a complex exp)."""
    out = np.empty(ph.shape, dtype=complex)
    np.cos(ph, out=out.real)
    np.sin(ph, out=out.imag)
    return out


def _grid_offset(t: np.ndarray, t0: float, dt: float) -> float:
    """The largest distance of the times ``t`` from the grid ``t0 + k dt``, seconds."""
    return float(np.max(np.abs(t - (t0 + dt * np.arange(t.size)))))


def _on_grid(omega: np.ndarray, phi: np.ndarray, t0: float, dt: float, m: int,
             cols: np.ndarray) -> np.ndarray:
    """Every ``exp(j (omega_ln (t0 + k dt) + phi_ln))``, k = 0..m-1, shape (L, m, N):
    one phasor per row of G times (``exp(j (omega (t0 + a G dt) + phi))``) times the
    columns ``cols = exp(j omega b dt)``, b = 0..G-1, shape (L, G, N)."""
    g = cols.shape[1]
    rows = -(-m // g)
    left = _expj(omega[:, None, :] * (t0 + (g * dt) * np.arange(rows))[:, None]
                 + phi[:, None, :])  # (L, A, N)
    if rows == 1:
        return left * cols[:, :m]
    out = left[:, :, None, :] * cols[:, None, :, :]  # (L, A, G, N)
    return out.reshape(omega.shape[0], rows * g, omega.shape[1])[:, :m]


def _columns(omega: np.ndarray, dt: float, g: int) -> np.ndarray:
    """``exp(j omega b dt)``, b = 0..g-1, shape (L, g, N)."""
    return np.exp(1j * omega[:, None, :] * (dt * np.arange(g))[:, None])


def even_grid(t: np.ndarray, max_omega: float, min_times: int = 4 * GRID_ROW
              ) -> tuple[float, float, int] | None:
    """``(t0, dt, m)`` when the times ``t`` are ``t0 + k dt``, k = 0..m-1, to within
    a phase of :data:`GRID_PHASE_TOL` at angular frequencies up to ``max_omega``
    (rad/s); None otherwise or for fewer than ``min_times`` times."""
    if t.ndim != 1 or t.size < max(min_times, 2):
        return None
    m = t.size
    t0, dt = float(t[0]), float(t[-1] - t[0]) / (m - 1)
    if not (np.isfinite(dt) and dt > 0):
        return None
    return (t0, dt, m) if _grid_offset(t, t0, dt) * max_omega <= GRID_PHASE_TOL else None


def sinusoids_on_grid(omega: np.ndarray, phi: np.ndarray, t0: float, dt: float,
                      m: int) -> np.ndarray:
    """``sum_n exp(j (omega_ln t_k + phi_ln))`` at ``t_k = t0 + k dt``, k = 0..m-1.

    With ``k = a G + b`` (G = :data:`GRID_ROW`) each link's sums are a matrix product
    (rows a x sinusoids n) @ (sinusoids n x columns b).

    Parameters
    ----------
    omega, phi : ndarray, shape (L, N)
        Angular frequencies (rad/s) and phases (rad) of N sinusoids on L links.
    t0, dt : float
        First time and step, seconds.
    m : int
        Number of times.

    Returns
    -------
    ndarray of complex, shape (L, m)
    """
    n_links, n = omega.shape
    g = GRID_ROW
    rows = -(-m // g)
    cols = np.exp(1j * omega[:, :, None] * (dt * np.arange(g)))  # (L, N, G)
    out = np.empty((n_links, rows * g), dtype=complex)
    step = max(1, CHUNK_ELEMENTS // max(n_links * n, 1))  # bounded memory: (L, N, step)
    for a0 in range(0, rows, step):
        a = np.arange(a0, min(rows, a0 + step))
        left = np.exp(1j * (omega[:, :, None] * (t0 + (g * dt) * a) + phi[:, :, None]))
        block = np.matmul(left.transpose(0, 2, 1), cols)  # (L, A, G)
        out[:, a0 * g : (a0 + len(a)) * g] = block.reshape(n_links, -1)
    return out[:, :m]


def phasors(omega: np.ndarray, phi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Every ``exp(j (omega_ln t_k + phi_ln))``, shape (L, m, N), complex.

    On an even grid of at least 16 times, rows of ``G ~ sqrt(m)`` times are one
    exponential per row times one per column; otherwise the cosine and sine of each
    phase.

    Parameters
    ----------
    omega, phi : ndarray, shape (L, N)
        Angular frequencies (rad/s) and phases (rad).
    t : ndarray, shape (m,)
        Times, seconds.
    """
    t = np.asarray(t, dtype=float)
    grid = even_grid(t, float(np.max(np.abs(omega), initial=0.0)), min_times=16)
    if grid is None:
        return _expj(omega[:, None, :] * t[:, None] + phi[:, None, :])
    t0, dt, m = grid
    return _on_grid(omega, phi, t0, dt, m, _columns(omega, dt, max(1, int(round(np.sqrt(m))))))


#: columns ``exp(j omega b step)`` a :class:`PhasorTable` keeps, at most (complex values)
TABLE_ELEMENTS = 4_000_000


class PhasorTable:
    """The phasors of fixed sinusoids, with the columns of their own time step kept.

    A channel asks for its gains on a grid of its own hold interval ``step``: the
    middles ``(j + 1/2) step`` of consecutive blocks. The columns
    ``exp(j omega b step)``, b = 0..G-1 (G = :data:`GRID_ROW`), depend on the channel's
    draw and step only, so they are computed once; each call then takes one phasor
    per sinusoid and row of G times, ``exp(j (omega (t0 + a G step) + phi))``, and a
    product per value: a call of up to G times takes N exponentials per link instead
    of m N. The columns are not pickled (a checkpoint stays small; they are computed
    again, equal, on first use), and are kept only while they fit in
    :data:`TABLE_ELEMENTS` values (otherwise :func:`phasors` computes them per call).

    Parameters
    ----------
    omega, phi : ndarray, shape (L, N)
        Angular frequencies (rad/s) and phases (rad).
    step : float
        The grid step the table's columns are for, seconds (the hold interval).
    """

    def __init__(self, omega: np.ndarray, phi: np.ndarray, step: float) -> None:
        self.omega, self.phi, self.step = omega, phi, float(step)
        self.max_omega = float(np.max(np.abs(omega), initial=0.0))
        self._cols: np.ndarray | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cols": None}

    def _fits(self, t: np.ndarray) -> bool:
        """Whether ``t`` is a grid of the table's step (and the table fits)."""
        if t.ndim != 1 or t.size < 2 or not (np.isfinite(self.step) and self.step > 0):
            return False
        if self.omega.size * GRID_ROW > TABLE_ELEMENTS:
            return False
        return _grid_offset(t, float(t[0]), self.step) * self.max_omega <= GRID_PHASE_TOL

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """Every ``exp(j (omega_ln t_k + phi_ln))``, shape (L, m, N), complex."""
        t = np.asarray(t, dtype=float)
        if not self._fits(t):
            return phasors(self.omega, self.phi, t)
        if self._cols is None:
            self._cols = _columns(self.omega, self.step, GRID_ROW)
        return _on_grid(self.omega, self.phi, float(t[0]), self.step, t.size, self._cols)
