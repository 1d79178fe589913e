"""Block Rayleigh fading: ``|h|^2 ~ Exp(1)`` i.i.d. per coherence block."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from channels.base import register_channel
from channels.block import BlockFading
from channels.law import exponential_nodes


class RayleighParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    coherence_time_s: float = Field(0.1, ge=1e-6, le=1e6, description="block length, seconds")


@register_channel("rayleigh")
class BlockRayleigh(BlockFading):
    """Block Rayleigh fading.

    ``h ~ CN(0, 1)`` is redrawn independently at every coherence block of length
    ``coherence_time_s`` and held within it, so the power gain ``|h|^2`` is
    exponential with mean 1: ``P(|h|^2 <= x) = 1 - exp(-x)``.
    """

    Params = RayleighParams

    def draw(self, rng: np.random.Generator, n_blocks: int, n_links: int) -> np.ndarray:
        return rng.standard_exponential((n_blocks, n_links))

    def marginal_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact equal-probability bin means of the exponential law."""
        gains, probs = exponential_nodes()
        return gains[None, :], probs[None, :]
