"""Client placement in the cell and mobility: positions relative to the base station."""

from __future__ import annotations

import numpy as np


def place_clients(
    n: int,
    model: str,
    rng: np.random.Generator,
    radius_m: float,
    min_distance_m: float = 1.0,
    distances_m: list[float] | None = None,
) -> np.ndarray:
    """Positions of ``n`` clients, metres, shape (n, 2); the base station is at the origin.

    ``disk`` is uniform in area over the annulus ``[min_distance_m, radius_m]``
    (distance CDF ``(d^2 - d_min^2) / (R^2 - d_min^2)``); ``ring`` puts every client
    at ``radius_m``; ``explicit`` takes ``distances_m``. Angles are uniform.
    """
    if model == "disk":
        u = rng.random(n)
        d = np.sqrt(min_distance_m**2 + u * (radius_m**2 - min_distance_m**2))
    elif model == "ring":
        d = np.full(n, float(radius_m))
    elif model == "explicit":
        d = np.asarray(distances_m, dtype=float)
    else:
        raise ValueError(f"unknown placement model {model!r}")
    theta = rng.uniform(0, 2 * np.pi, n)
    return np.stack([d * np.cos(theta), d * np.sin(theta)], axis=1)


def uniform_in_annulus(n: int, r_min: float, r_max: float,
                       rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform in area over an annulus, shape (n, 2)."""
    d = np.sqrt(r_min**2 + rng.random(n) * (r_max**2 - r_min**2))
    theta = rng.uniform(0, 2 * np.pi, n)
    return np.stack([d * np.cos(theta), d * np.sin(theta)], axis=1)


class RandomWaypoint:
    """Constant-speed random waypoint mobility inside the cell.

    Each client walks in a straight line at ``speed_mps`` to a waypoint drawn
    uniformly in the annulus ``[min_distance_m, radius_m]``, pauses ``pause_s``,
    then draws the next. Positions are a deterministic function of time for a given
    generator, and time may only move forward.

    Parameters
    ----------
    start : ndarray, shape (n, 2)
        Positions at time 0, metres.
    """

    def __init__(self, start: np.ndarray, speed_mps: float, pause_s: float, radius_m: float,
                 min_distance_m: float, rng: np.random.Generator) -> None:
        self.speed = speed_mps
        self.pause = pause_s
        self.r = (min_distance_m, radius_m)
        self.rng = rng
        n = len(start)
        self.src = np.array(start, dtype=float)
        self.t_src = np.zeros(n)
        self.dst = uniform_in_annulus(n, *self.r, rng)
        self.t_dst = self.t_src + np.linalg.norm(self.dst - self.src, axis=1) / speed_mps
        self.now = 0.0

    def positions(self, t_s: float) -> np.ndarray:
        """Positions at time ``t_s`` (>= the last time asked), shape (n, 2)."""
        if t_s < self.now:
            raise ValueError("mobility time may only move forward")
        self.now = t_s
        while True:  # advance the clients whose leg (walk + pause) ended before t_s
            done = np.flatnonzero(self.t_dst + self.pause <= t_s)
            if done.size == 0:
                break
            self.src[done] = self.dst[done]
            self.t_src[done] = self.t_dst[done] + self.pause
            self.dst[done] = uniform_in_annulus(done.size, *self.r, self.rng)
            self.t_dst[done] = (self.t_src[done]
                                + np.linalg.norm(self.dst[done] - self.src[done], axis=1)
                                / self.speed)
        span = np.maximum(self.t_dst - self.t_src, 1e-12)
        frac = np.clip((t_s - self.t_src) / span, 0.0, 1.0)[:, None]
        return self.src + frac * (self.dst - self.src)
