"""Element-wise top-k of the update, on A and B separately (the naive LoRA baseline).

For a keep budget of m of r ranks, every LoRA tensor keeps the ``ceil(m / r * n)``
entries (n: the entries of the client's r ranks) whose change from the global
adapter is largest in magnitude; the server adds those changes to the global
values. Each kept value costs ``bits_per_value`` plus ``ceil(log2 n)`` index bits;
the head is sent whole. Sparsifying A and B independently ignores that only their
product matters, the failure mode SOFT avoids.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from wirelessfl.compression.base import Compressed, Compressor, register_compressor
from wirelessfl.compression.ranks import rank_and_keep
from wirelessfl.learning.adapter import State
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.lora import LORA_A, LORA_B, numels_at_rank


def _kept(n: int, m: int, r: int) -> int:
    return min(n, math.ceil(m / r * n)) if r > 0 else n


@register_compressor("topk")
class TopK(Compressor):
    """Top-k magnitude sparsification of each LoRA tensor's change."""

    sparsifies = True

    def payload_bits(self, shapes, rank, bits_per_value, keep_ranks):
        m = rank if keep_ranks is None else keep_ranks
        bits = 0
        for name, n in numels_at_rank(shapes, rank).items():
            if name.endswith((LORA_A, LORA_B)) and m < rank:
                k = _kept(n, m, rank)
                bits += k * (bits_per_value + math.ceil(math.log2(max(n, 2))))
            else:
                bits += n * bits_per_value
        return bits

    def compress(self, update: ClientUpdate, global_state: State, bits_per_value: int,
                 keep: int | None, rng: np.random.Generator) -> Compressed:
        shapes, r, m = rank_and_keep(update, keep)
        out = {n: t.clone() for n, t in update.state.items()}
        if m < r:
            for name, t in update.state.items():
                if not name.endswith((LORA_A, LORA_B)):
                    continue
                own = t[:r] if name.endswith(LORA_A) else t[:, :r]
                g = global_state[name][:r] if name.endswith(LORA_A) else \
                    global_state[name][:, :r]
                delta = (own - g).flatten()
                k = _kept(delta.numel(), m, r)
                idx = torch.topk(delta.abs(), k).indices
                sparse = torch.zeros_like(delta)
                sparse[idx] = delta[idx]
                new = global_state[name].clone()
                if name.endswith(LORA_A):
                    new[:r] = g + sparse.view_as(g)
                else:
                    new[:, :r] = g + sparse.view_as(g)
                out[name] = new
        sent = ClientUpdate(update.client_id, update.num_samples, out, update.train_loss,
                            update.rank, update.metrics)
        return Compressed(sent, self.payload_bits(shapes, r, bits_per_value, m))
