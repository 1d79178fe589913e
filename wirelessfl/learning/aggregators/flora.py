"""FLoRA: stack the clients' factors (exact sum of products) and merge into the base.

Each round every client starts a fresh LoRA of its own rank (A random, B = 0) on
the current base weights. The server forms ``B_s A_s = sum_k p_k B_k A_k`` by
stacking (the weight applied once, on the A blocks), merges ``s B_s A_s`` into the
base weights and broadcasts the stacked adapter, whose rank ``sum_k r_k`` grows with
the number of clients: the downlink bits follow it. Heterogeneous ranks are exact
by construction. The head is averaged with the same weights.
"""

from __future__ import annotations

import torch

from wirelessfl.learning.adapter import State
from wirelessfl.learning.aggregators.base import (
    Aggregator,
    register_aggregator,
    sample_weights,
    weighted_average,
)
from wirelessfl.learning.aggregators.lowrank import stack
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.lora import LoraSite, fresh_lora


class StackingAggregator(Aggregator):
    """Shared round protocol of FLoRA and FLoRIST: fresh LoRA each round, merge."""

    needs_lora = True

    merges_into_base = True

    def setup(self, sites: list[LoraSite], initial_state: State) -> None:
        super().setup(sites, initial_state)
        lora = {s.a for s in sites} | {s.b for s in sites}
        self._head_numel = sum(t.numel() for n, t in initial_state.items() if n not in lora)
        self._downlink = self._head_numel  # round 0: clients hold the base; only the head

    def client_state(self, global_state: State, client_id: int, rank: int,
                     generator: torch.Generator) -> State:
        return fresh_lora(global_state, rank, generator)

    def downlink_numels(self, global_state: State) -> int:
        return self._downlink

    def reduce(self, site: LoraSite, b_s: torch.Tensor,
               a_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """The (B, A) pair to merge and broadcast for one site; FLoRA keeps the stack."""
        return b_s, a_s, {}

    def aggregate(self, global_state: State,
                  updates: list[ClientUpdate]) -> tuple[State, dict[str, float]]:
        p = sample_weights(updates)
        ranks = [u.rank or self.full_rank for u in updates]
        downlink = self._head_numel
        site_metrics: list[dict[str, float]] = []
        new = {}
        for site in self.sites:
            b_s, a_s = stack([u.state[site.b] for u in updates],
                             [u.state[site.a] for u in updates], p, ranks)
            b, a, m = self.reduce(site, b_s, a_s)
            site.merge(site.scaling * (b @ a))
            downlink += b.shape[1] * (site.d_in + site.d_out)
            site_metrics.append(m)
            new[site.a] = torch.zeros_like(global_state[site.a])
            new[site.b] = torch.zeros_like(global_state[site.b])
        for n in global_state:
            if n not in new:
                new[n] = weighted_average([u.state[n] for u in updates], p)
        self._downlink = downlink
        per_rank = sum(s.d_in + s.d_out for s in self.sites)
        metrics = {"downlink_rank_mean": (downlink - self._head_numel) / per_rank
                   if per_rank else 0.0}
        for key in site_metrics[0] if site_metrics else {}:
            metrics[key] = float(sum(m[key] for m in site_metrics) / len(site_metrics))
        return new, metrics


@register_aggregator("flora")
class FLoRA(StackingAggregator):
    """Stacking aggregation: merge ``sum_k p_k s B_k A_k`` exactly."""
