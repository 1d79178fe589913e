"""FFA-LoRA: A frozen at its shared random initialisation; only B is trained and sent.

With A fixed, ``sum_k p_k B_k A = (sum_k p_k B_k) A`` exactly: averaging B has no
covariance error, and the uplink carries half the LoRA values. A is peft's seeded
initialisation, identical on every client (the shared seed), and is never sent.
"""

from __future__ import annotations

from wirelessfl.learning.adapter import State
from wirelessfl.learning.aggregators.base import (
    Aggregator,
    register_aggregator,
    sample_weights,
    weighted_average,
)
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.lora import LORA_A


@register_aggregator("ffa")
class FFALoRA(Aggregator):
    """Freeze every LoRA A; average B and the head with weights ``p_k``."""

    needs_lora = True

    def frozen(self, name: str) -> bool:
        return name.endswith(LORA_A)

    def aggregate(self, global_state: State,
                  updates: list[ClientUpdate]) -> tuple[State, dict[str, float]]:
        p = sample_weights(updates)
        return {n: weighted_average([u.state[n] for u in updates], p) for n in global_state}, {}
