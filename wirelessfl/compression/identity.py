"""The identity compressor: every trainable value is sent at ``bits_per_value`` bits."""

from __future__ import annotations

import numpy as np

from wirelessfl.compression.base import Compressed, Compressor, register_compressor
from wirelessfl.learning.adapter import State
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.lora import numels_at_rank
from wirelessfl.network.payload import dense_bits


@register_compressor("none")
class Identity(Compressor):
    """No compression: ``S = q * (values of the client's r_k ranks and the head)`` bits."""

    def payload_bits(self, shapes: dict[str, tuple[int, ...]], rank: int, bits_per_value: int,
                     keep_ranks: int | None) -> int:
        return dense_bits(numels_at_rank(shapes, rank).values(), bits_per_value)

    def compress(self, update: ClientUpdate, global_state: State, bits_per_value: int,
                 keep_ranks: int | None, rng: np.random.Generator) -> Compressed:
        shapes = {n: tuple(t.shape) for n, t in update.state.items()}
        rank = update.rank if update.rank is not None else 1 << 30
        return Compressed(update, self.payload_bits(shapes, rank, bits_per_value, None))
