"""FLoRIST: SVD of the stacked factors, thresholded by energy, without the dense update.

As FLoRA, but before merging and broadcasting, each site's stacked product is
replaced by its best rank-p approximation: ``B_s A_s = U S V^T`` is computed from
the QR factors of the stacks (see :mod:`lowrank`), and p is the smallest rank whose
cumulative energy ``sum_{j<=p} s_j^2 / sum s_j^2`` reaches ``tau``, per site. The
broadcast adapter is ``B_g = U_p S_p`` (d_out x p), ``A_g = V_p^T`` (p x d_in), so
the downlink carries ``p (d_in + d_out)`` values per site. ``tau = 1`` is FLoRA.
The dropped energy ``sum_{j>p} s_j^2`` is exactly the squared truncation error.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.learning.aggregators.base import register_aggregator
from wirelessfl.learning.aggregators.flora import StackingAggregator
from wirelessfl.learning.aggregators.lowrank import energy_rank, product_svd
from wirelessfl.learning.lora import LoraSite


class FLoRISTParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tau: float = Field(0.9, gt=0, le=1, description="energy kept by the thresholded SVD")


@register_aggregator("florist")
class FLoRIST(StackingAggregator):
    """FLoRA with singular-value thresholding of each site's aggregate."""

    Params = FLoRISTParams

    def reduce(self, site: LoraSite, b_s: torch.Tensor,
               a_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        u, s, vh = product_svd(b_s, a_s)
        p = energy_rank(s, self.params.tau)
        total = float((s**2).sum())
        dropped = float((s[p:] ** 2).sum())
        return u[:, :p] * s[:p], vh[:p], {
            "florist_rank": float(p),
            "florist_dropped_energy": dropped / total if total > 0 else 0.0,
        }
