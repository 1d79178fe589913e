"""AWGN: no fading, unit power gain at every time."""

from __future__ import annotations

import numpy as np

from channels.base import Channel, register_channel


@register_channel("awgn")
class AWGN(Channel):
    """Time-invariant unit gain: only path loss, shadowing and noise remain."""

    coherence_time_s = float("inf")

    def reset(self, n_links: int, rng: np.random.Generator) -> None:
        self.n_links = int(n_links)

    def gains(self, times_s: np.ndarray) -> np.ndarray:
        return np.ones((self.n_links, np.size(times_s)))
