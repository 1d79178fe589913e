"""Baseline controllers: min-max bandwidth, fixed sparsification, per-round deadline, ideal."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.control.base import (
    Allocation,
    Controller,
    RoundContext,
    planned_latency_s,
    register_controller,
    sent_bits,
)


def full_ranks(ctx: RoundContext) -> np.ndarray:
    return np.asarray(ctx.ranks, dtype=int)


def bits_at(ctx: RoundContext, m: np.ndarray) -> np.ndarray:
    """Payloads when client k sends ``m[k]`` ranks."""
    if ctx.bits is None:
        return ctx.full_bits
    return ctx.bits[np.arange(len(m)), m]


def allocate(ctx: RoundContext, m: np.ndarray, keep: bool) -> Allocation:
    """Min-max bandwidth for the payloads of ``m`` ranks."""
    bits = bits_at(ctx, m)
    _, b = ctx.plan.minmax(ctx.start_s, bits, ctx.bandwidth_hz)
    return Allocation(b, m if keep else None, planned_latency_s(ctx, b, bits))


def minmax_blocks(ctx: RoundContext, alloc: Allocation, block_hz: float) -> Allocation:
    """``alloc``'s payloads on the whole-block allocation with the least latest finish."""
    from wirelessfl.control.blocks import block_count, integer_minmax, with_blocks

    bits = sent_bits(ctx, alloc.keep_ranks)
    _, blocks = integer_minmax(ctx.plan, ctx.start_s, bits,
                               block_count(ctx.bandwidth_hz, block_hz), block_hz)
    return with_blocks(ctx, alloc, blocks, block_hz, bits)


@register_controller("minmax")
class MinMax(Controller):
    """Full rank; the bandwidth that equalises and minimises the clients' latencies.

    In whole resource blocks: the integer min-max allocation (exact)."""

    def to_blocks(self, ctx: RoundContext, alloc: Allocation, block_hz: float) -> Allocation:
        return minmax_blocks(ctx, alloc, block_hz)

    def online(self, ctx: RoundContext) -> Allocation:
        return allocate(ctx, full_ranks(ctx), keep=False)


class FixedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep_ratio: float = Field(0.5, gt=0, le=1, description="share of ranks each client sends")


@register_controller("fixed")
class FixedRatio(Controller):
    """Equal bandwidth; every client sends ``ceil(keep_ratio r_k)`` ranks."""

    Params = FixedParams

    def online(self, ctx: RoundContext) -> Allocation:
        n = len(ctx.client_ids)
        m = np.array([max(1, math.ceil(self.params.keep_ratio * r)) for r in ctx.ranks])
        b = np.full(n, ctx.bandwidth_hz / n)
        return Allocation(b, m, planned_latency_s(ctx, b, bits_at(ctx, m)))


class GreedyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deadline_s: float | None = Field(
        None, gt=0, le=1e7, description="per-round target (default: controller.latency_budget_s)"
    )


@register_controller("greedy")
class GreedyDeadline(Controller):
    """Meet a per-round latency target by dropping ranks greedily.

    Starting from full rank with min-max bandwidth, while the planned round latency
    exceeds the target, the slowest client sends one rank fewer (never below 1).
    The long-term budget is treated as a hard per-round deadline: no averaging.
    """

    Params = GreedyParams

    def to_blocks(self, ctx: RoundContext, alloc: Allocation, block_hz: float) -> Allocation:
        return minmax_blocks(ctx, alloc, block_hz)

    def online(self, ctx: RoundContext) -> Allocation:
        target = self.params.deadline_s or ctx.latency_budget_s
        m = full_ranks(ctx).copy()
        alloc = allocate(ctx, m, keep=True)
        if target is None or ctx.bits is None:
            return alloc
        while alloc.planned_latency_s.max() > target and np.any(m > 1):
            order = np.argsort(-alloc.planned_latency_s)
            k = next(i for i in order if m[i] > 1)
            m[k] -= 1
            alloc = allocate(ctx, m, keep=True)
        return alloc


@register_controller("ideal")
class Ideal(Controller):
    """The accuracy ceiling: full rank and, for every client, the whole band B at once.

    Not realisable under FDMA (it gives K times the bandwidth); its latency is a
    lower bound for any allocation of full-rank uploads.
    """

    def online(self, ctx: RoundContext) -> Allocation:
        b = np.full(len(ctx.client_ids), ctx.bandwidth_hz)
        return Allocation(b, None, planned_latency_s(ctx, b, ctx.full_bits),
                          metrics={"ideal_bandwidth_multiple": float(len(b))})
