"""A channel model in one file: the worked example of docs/channels.md.

Name it in a scenario as ``channel: {fading: {model: "gamma_fading:GammaFading"}}``
with this folder on ``PYTHONPATH``, or copy it into ``channels/`` and import it from
``channels/__init__.py`` to use the short name ``gamma``.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from channels.base import register_channel
from channels.block import BlockFading


class GammaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is a one-line error
    coherence_time_s: float = Field(0.05, gt=0, description="block length, seconds")
    shape: float = Field(2.0, gt=0, description="gamma shape k (k = 1: Rayleigh)")


@register_channel("gamma")
class GammaFading(BlockFading):
    """Block fading with a Gamma(k, 1/k) power gain: unit mean, i.i.d. per block."""

    Params = GammaParams

    def draw(self, rng: np.random.Generator, n_blocks: int, n_links: int) -> np.ndarray:
        k = self.params.shape
        return rng.gamma(k, 1.0 / k, (n_blocks, n_links))  # (n_blocks, n_links)
