"""The identity compressor: every trainable value is sent at ``bits_per_value`` bits."""

from __future__ import annotations

import numpy as np

from wirelessfl.compression.base import Compressed, Compressor, register_compressor
from wirelessfl.learning.adapter import State, numels
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.network.payload import dense_bits


@register_compressor("none")
class Identity(Compressor):
    """No compression: ``S = q * (number of trainable values)`` bits."""

    def payload_bits(self, numels: dict[str, int], bits_per_value: int,
                     keep_ranks: int | None) -> int:
        return dense_bits(numels.values(), bits_per_value)

    def compress(self, update: ClientUpdate, global_state: State, bits_per_value: int,
                 keep_ranks: int | None, rng: np.random.Generator) -> Compressed:
        return Compressed(update, self.payload_bits(numels(update.state), bits_per_value, None))
