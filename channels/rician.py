"""Block Rician fading: a fixed line-of-sight component plus Rayleigh scatter."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.base import register_channel
from channels.block import BlockFading
from channels.law import rician_nodes


class RicianParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    coherence_time_s: float = Field(0.1, ge=1e-6, le=1e6, description="block length, seconds")
    k_factor_db: float | None = Field(None, ge=-100, le=60,
                                      description="K = LOS / scatter power, dB")
    k_factor: float | None = Field(None, ge=0, le=1e6, description="K as a linear ratio")

    @model_validator(mode="after")
    def _one_k(self) -> RicianParams:
        if self.k_factor_db is not None and self.k_factor is not None:
            raise ValueError("give k_factor_db or k_factor, not both")
        if self.k_factor_db is None and self.k_factor is None:
            self.k_factor_db = 3.0
        return self

    @property
    def k_linear(self) -> float:
        return self.k_factor if self.k_factor is not None else 10 ** (self.k_factor_db / 10)


@register_channel("rician")
class BlockRician(BlockFading):
    """Block Rician fading with unit mean power.

    ``h = sqrt(K / (K + 1)) + sqrt(1 / (K + 1)) w``, ``w ~ CN(0, 1)``, redrawn per
    block. ``2 (K + 1) |h|^2`` is noncentral chi-square with 2 degrees of freedom and
    noncentrality ``2 K``; ``K = 0`` is Rayleigh.
    """

    Params = RicianParams

    def marginal_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact equal-probability bin means of the Rician power law (mean exactly 1)."""
        gains, probs = rician_nodes(self.params.k_linear)
        return gains[None, :], probs[None, :]

    def draw(self, rng: np.random.Generator, n_blocks: int, n_links: int) -> np.ndarray:
        k = self.params.k_linear
        w = rng.standard_normal((n_blocks, n_links, 2)) * np.sqrt(0.5 / (k + 1))
        return (np.sqrt(k / (k + 1)) + w[..., 0]) ** 2 + w[..., 1] ** 2
