"""Block Nakagami-m fading."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from channels.base import register_channel
from channels.block import BlockFading
from channels.law import gamma_nodes


class NakagamiParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    coherence_time_s: float = Field(0.1, ge=1e-6, le=1e6, description="block length, seconds")
    m: float = Field(2.0, ge=0.5, le=1e4, description="shape m (m = 1: Rayleigh)")


@register_channel("nakagami")
class BlockNakagami(BlockFading):
    """Block Nakagami-m fading with unit mean power: ``|h|^2 ~ Gamma(m, 1/m)``."""

    Params = NakagamiParams

    def marginal_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact equal-probability bin means of Gamma(m, 1/m) (mean exactly 1)."""
        gains, probs = gamma_nodes(self.params.m, 1.0 / self.params.m)
        return gains[None, :], probs[None, :]

    def draw(self, rng: np.random.Generator, n_blocks: int, n_links: int) -> np.ndarray:
        m = self.params.m
        return rng.gamma(m, 1.0 / m, (n_blocks, n_links))
