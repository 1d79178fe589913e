"""Equal bandwidth, full rank: the default baseline controller."""

from __future__ import annotations

import numpy as np

from wirelessfl.control.base import (
    Allocation,
    Controller,
    RoundContext,
    planned_latency_s,
    register_controller,
)


@register_controller("equal")
class EqualBandwidth(Controller):
    """``b_k = B / n`` for the n selected clients; every rank is sent."""

    def online(self, ctx: RoundContext) -> Allocation:
        n = len(ctx.client_ids)
        b = np.full(n, ctx.bandwidth_hz / n)
        return Allocation(b, None, planned_latency_s(ctx, b, ctx.full_bits))
