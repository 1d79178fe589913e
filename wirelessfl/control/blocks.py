"""OFDMA resource blocks: allocations in whole blocks.

With ``radio.resource_block_hz = w`` the band holds ``N = floor(B / w)`` blocks; the
controllers plan with the usable band ``N w`` and every allocation is turned into
whole blocks ``n_k`` with ``sum n_k = N`` by the controller's
:meth:`~wirelessfl.control.base.Controller.to_blocks`:

* the default, for controllers that split the band by a rule of their own (equal,
  fixed, greedy, ...), is largest-remainder rounding (:func:`largest_remainder`):
  floors, then one more block to the largest fractional parts. It keeps the total
  and moves no client by a whole block.
* latency-minimising controllers (min-max, TSFA) solve the integer problem instead:
  :func:`integer_minmax` gives the allocation of N blocks that minimises the latest
  planned finish of the given payloads, exactly (tested against enumeration).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from wirelessfl.control.planning import UplinkModel

#: slack in ``floor(B / w)`` so that ``N w / w`` gives back N
_FLOOR_SLACK = 1e-9


def block_count(bandwidth_hz: float, block_hz: float) -> int:
    """Whole blocks in the band, ``floor(B / w)``."""
    return int(np.floor(bandwidth_hz / block_hz + _FLOOR_SLACK))


def largest_remainder(bandwidth_hz: np.ndarray, total: int, block_hz: float) -> np.ndarray:
    """Whole blocks nearest to ``bandwidth_hz``, summing to ``total`` (Hamilton's rule).

    Floors first; the blocks left go to the largest fractional parts (ties to the
    lower index), then, if the allocation used less than the band, to the clients
    that already hold bandwidth, in turn. Clients with no bandwidth get none.

    Returns
    -------
    ndarray of int, shape (n,)
    """
    share = np.asarray(bandwidth_hz, dtype=float) / block_hz
    blocks = np.floor(share + _FLOOR_SLACK).astype(np.int64)
    left = total - int(blocks.sum())
    holders = np.flatnonzero(share > 0)
    if left <= 0 or holders.size == 0:
        return blocks
    frac = np.where(share > 0, share - blocks, -1.0)
    order = np.argsort(-frac, kind="stable")[: min(left, holders.size)]
    blocks[order] += 1
    left -= order.size
    if left > 0:  # a controller that left part of the band unused
        blocks[holders] += left // holders.size
        blocks[holders[: left % holders.size]] += 1
    return blocks


def finish_table(plan: UplinkModel, start_s: np.ndarray, bits: np.ndarray, total: int,
                 block_hz: float) -> np.ndarray:
    """Planned upload end of each client with 1..``total`` blocks, shape (n, total)."""
    n = len(bits)
    b = np.broadcast_to(block_hz * np.arange(1, total + 1, dtype=float), (n, total))
    s = np.broadcast_to(np.asarray(bits, dtype=float)[:, None], (n, total))
    return plan.finish_s(np.ascontiguousarray(b), np.ascontiguousarray(s), start_s)


def integer_minmax(plan: UplinkModel, start_s: np.ndarray, bits: np.ndarray, total: int,
                   block_hz: float) -> tuple[float, np.ndarray]:
    """The allocation of ``total`` whole blocks that minimises the latest planned finish.

    A client that sends nothing gets no block; see :func:`minmax_from_table`.

    Returns
    -------
    tau_s : float
        The latest planned finish, after the round start (``inf`` if N blocks cannot
        serve every sender).
    blocks : ndarray of int, shape (n,)
        Summing to ``total`` when some client sends.
    """
    bits = np.asarray(bits, dtype=float)
    senders = np.flatnonzero(bits > 0)
    blocks = np.zeros(len(bits), dtype=np.int64)
    if senders.size == 0 or total <= 0:
        return float(np.max(start_s, initial=0.0)), blocks
    table = finish_table(plan.take(senders), np.asarray(start_s)[senders], bits[senders],
                         total, block_hz)
    tau, blocks[senders] = minmax_from_table(table, total)
    return tau, blocks


def minmax_from_table(table: np.ndarray, total: int) -> tuple[float, np.ndarray]:
    """Integer min-max from each sender's finish with 1..N blocks, ``table`` (n, N).

    The rows decrease along the blocks. The optimum ``tau`` is the smallest tabulated
    finish at which the blocks each sender needs to be done by it,
    ``1 + #{j : F[k, j] > tau}``, sum to at most N (bisection over the sorted table);
    every integer allocation with a smaller latest finish would need more. The blocks
    left after that go one by one to the latest finisher (tau does not move; the
    others end sooner). With more senders than blocks, the fastest get one each and
    tau is ``inf``.

    Returns
    -------
    tau_s : float
    blocks : ndarray of int, shape (n,)
    """
    n = table.shape[0]
    if n > total:
        own = np.zeros(n, dtype=np.int64)
        own[np.argsort(table[:, -1], kind="stable")[:total]] = 1
        return float("inf"), own
    values = np.unique(table[np.isfinite(table)])

    def needed(tau: float) -> np.ndarray:
        return 1 + np.sum(table > tau, axis=1)

    lo, hi = 0, max(len(values) - 1, 0)  # at the largest value one block each will do
    while lo < hi:
        mid = (lo + hi) // 2
        if needed(values[mid]).sum() <= total:
            hi = mid
        else:
            lo = mid + 1
    if values.size == 0 or needed(values[lo]).sum() > total:  # a sender with no rate
        tau, own = float("inf"), np.ones(n, dtype=np.int64)
    else:
        tau, own = float(values[lo]), needed(values[lo])
    rows = np.arange(n)
    for _ in range(total - int(own.sum())):  # the rest, to the latest finisher
        own[int(np.argmax(table[rows, own - 1]))] += 1
    return tau, own


def ranks_in_blocks(ctx, cost: np.ndarray, m: np.ndarray, total: int, block_hz: float,
                    pairs: bool = True, search: bool = True
                    ) -> tuple[np.ndarray, np.ndarray]:
    """TSFA's ranks re-chosen for whole blocks, and the blocks.

    In whole blocks the latency of ranks m is the integer min-max latency
    ``tau_int(m)`` (:func:`minmax_from_table`, from each sender's finish with 1..N
    blocks for each of its rank choices, tabulated once), so the objective is
    ``sum_k cost[k, m_k] + Q tau_int(m)``. From ``m`` (the continuous choice), the best
    of all single-rank moves and all pairs of moves (two clients, each one rank up or
    down) is taken while one lowers it. Who is scheduled stays: a sender never drops
    to 0 and a left-out client (m = 0) does not come back. A sweep scores O(n^2)
    pairs, O(n) without ``pairs``; without ``search`` the ranks stay as given and only
    the blocks are chosen (TSFA sets both by its client-count thresholds).

    Parameters
    ----------
    ctx : RoundContext
        With ``bits`` (n, R + 1), the plan and the queue Q.
    cost : ndarray, shape (n, R + 1)
        ``V p_k eps_k(m)`` per choice; ``inf`` where not allowed.
    m : ndarray of int, shape (n,)
        The starting ranks.

    Returns
    -------
    m : ndarray of int, shape (n,)
    blocks : ndarray of int, shape (n,)
    """
    m = np.asarray(m, dtype=int).copy()
    width = cost.shape[1]
    senders = np.flatnonzero(m > 0)
    plan, start = ctx.plan.take(senders), ctx.start_s[senders]
    # finish of sender i with rank choice c and 1..N blocks: (senders, width, N)
    tables = np.stack([finish_table(plan, start, ctx.bits[senders, max(c, 1)], total,
                                    block_hz) for c in range(width)], axis=1)
    rows, every = np.arange(senders.size), np.arange(len(m))

    def score(ranks: np.ndarray) -> float:
        tau, _ = minmax_from_table(tables[rows, ranks[senders]], total)
        return float(cost[every, ranks].sum() + ctx.queue * tau)

    def moves(ranks: np.ndarray):
        steps = [(k, d) for k in senders for d in (1, -1)
                 if 1 <= ranks[k] + d < width and np.isfinite(cost[k, ranks[k] + d])]
        for i, (k, d) in enumerate(steps):
            moved = ranks.copy()
            moved[k] += d
            yield moved
            for j, e in steps[i + 1:] if pairs else ():
                if j != k:
                    both = moved.copy()
                    both[j] += e
                    yield both

    cur = score(m)
    for _ in range(len(m) * width if search else 0):
        best = None
        for moved in moves(m):
            j = score(moved)
            if j < cur - 1e-12 * max(1.0, abs(cur)) and (best is None or j < best[0]):
                best = (j, moved)
        if best is None:
            break
        cur, m = best
    _, own = minmax_from_table(tables[rows, m[senders]], total)
    blocks = np.zeros(len(m), dtype=np.int64)
    blocks[senders] = own
    return m, blocks


def with_blocks(ctx, alloc, blocks: np.ndarray, block_hz: float, bits: np.ndarray):
    """``alloc`` with ``blocks`` whole blocks each and the planned latencies they give
    to payloads of ``bits`` (shape (n,))."""
    b = np.asarray(blocks, dtype=float) * block_hz
    sends = (bits > 0) & (b > 0)
    planned = np.asarray(alloc.planned_latency_s, dtype=float).copy()
    if sends.any():
        planned[sends] = ctx.plan.finish_s(b, bits, ctx.start_s)[sends]
    planned[(bits > 0) & (b <= 0)] = np.inf
    return replace(alloc, bandwidth_hz=b, planned_latency_s=planned,
                   resource_blocks=np.asarray(blocks, dtype=np.int64))
