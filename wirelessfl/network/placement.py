"""Client placement in the cell: distances to the base station."""

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
    """Distances of ``n`` clients to the base station, metres, shape (n,).

    ``disk`` is uniform in area over the annulus ``[min_distance_m, radius_m]``
    (CDF ``(d^2 - d_min^2) / (R^2 - d_min^2)``); ``ring`` puts every client at
    ``radius_m``; ``explicit`` takes ``distances_m``.
    """
    if model == "disk":
        u = rng.random(n)
        return np.sqrt(min_distance_m**2 + u * (radius_m**2 - min_distance_m**2))
    if model == "ring":
        return np.full(n, float(radius_m))
    if model == "explicit":
        return np.asarray(distances_m, dtype=float)
    raise ValueError(f"unknown placement model {model!r}")
