"""Payload bit accounting for adapter transmissions."""

from __future__ import annotations

import math
from collections.abc import Iterable


def dense_bits(numels: Iterable[int], bits_per_value: int) -> int:
    """Bits to send every value of tensors with the given element counts."""
    return int(sum(int(n) for n in numels)) * int(bits_per_value)


def rank_index_bits(kept_ranks: int, rank: int) -> int:
    """Bits naming ``kept_ranks`` of ``rank`` rank indices: ``m ceil(log2 r)``."""
    if kept_ranks >= rank or rank <= 1:
        return 0
    return int(kept_ranks) * math.ceil(math.log2(rank))
