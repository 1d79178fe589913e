"""Branch and bound over the round's deadline: the exact rank choice of TSFA's online stage.

TSFA minimises ``J(m) = C(m) + Q tau*(m)`` over integer rank vectors m, where
``C(m) = sum_k cost[k, m_k]`` and ``tau*(m)`` is the min-max latency of the payloads.
Write ``g(tau)`` for the least cost of a vector that fits by deadline tau (the
per-deadline knapsack). g is a non-increasing step function, and

    min_m J(m) = min_tau g(tau) + Q tau,

so on any interval ``(a, c]`` of deadlines ``J >= g(c) + Q a``. A query at c returns
the knapsack's choice m_c and its exact latency ``t_c = tau*(m_c) <= c``; it settles
``[t_c, c]`` (there ``g = C(m_c)``, and ``J(m_c)`` is the least J of that stretch) and
leaves ``(a, t_c)``, where ``g >= C(m_c)``. That remainder is split in two, each part
with its lower bound, and the parts are explored best bound first until no bound
is below the best J found. Every query finds the highest step of g at or below
its deadline, so the search ends after finitely many queries; an interval with no
step closes at its first query.

Exact up to the deadlines skipped just below each found latency
(``t_c (1 - skip)``, where J can be at most ``skip Q t_c`` below the best) and the
per-deadline solver's own accuracy, as long as ``choose`` is exact. No convexity of
the error profile is assumed. numpy and the standard library only.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class SearchResult:
    """The best rank vector found and what certifies it.

    Attributes
    ----------
    m : ndarray of int, shape (n,)
    j : float
        Its objective ``C(m) + Q tau*(m)``.
    queries : int
        Per-deadline solves made by the search.
    gap : float
        ``(j - least open bound) / |j|``: 0 when every interval was closed (the
        optimum, up to ``rtol``), positive when ``max_queries`` stopped the search.
    answered : int
        Queries that returned a rank vector.
    """

    m: np.ndarray
    j: float
    queries: int
    gap: float
    answered: int = 0


def branch_and_bound(query: Callable[[list[float], list[float]],
                                     list[tuple[np.ndarray, float, float, float] | None]],
                     queue: float, regions: list[tuple[float, float, float]],
                     best_m: np.ndarray, best_j: float, rtol: float = 1e-9,
                     skip: float = 1e-8, batch: int = 16,
                     max_queries: int = 4_000) -> SearchResult:
    """The rank vector of least J with its latency in the given regions, or ``best_m``.

    Parameters
    ----------
    query : callable
        ``query(taus, caps)``: for each deadline, the least-cost rank vector that
        fits by it (exact) as ``(m, J, C, tau*)`` (objective, cost, exact min-max
        latency in s), or None when none fits with a cost of at most its cap (such
        a region cannot hold a better J).
    queue : float
        Q(t) >= 0, seconds.
    regions : list of (bound, a, c)
        Intervals ``(a, c]`` of deadlines (s) that together cover every deadline
        that can matter (from one where nothing fits to one where the least-cost
        vector fits), each with a lower bound on J over it (``-inf``: none known).
    best_m, best_j : ndarray, float
        The incumbent (any vector and its J); the better it is, the sooner the
        search ends.
    rtol : float
        Relative tolerance of the bounds.
    skip : float
        Deadlines skipped below each found latency, relative: more than the
        latency's own accuracy, so that a latency found a little late does not
        leave its own step open.
    batch : int
        Regions queried together (best bounds first), in one call of ``query``.
    max_queries : int
        Query limit; the search stops early with a positive ``gap``.
    """
    best_m, best_j = np.asarray(best_m).copy(), float(best_j)
    heap = [(float(b), float(a), float(c)) for b, a, c in regions]
    heapq.heapify(heap)
    queries = answered = 0

    def closes(bound: float) -> bool:
        return bound >= best_j - rtol * max(abs(best_j), 1e-300)

    while heap and not closes(heap[0][0]) and queries < max_queries:
        todo = []
        while heap and len(todo) < batch and not closes(heap[0][0]):
            todo.append(heapq.heappop(heap))
        queries += len(todo)
        tol = rtol * max(abs(best_j), 1e-300)
        answers = query([c for _, _, c in todo], [best_j - tol - queue * a for _, a, _ in todo])
        answered += sum(ans is not None for ans in answers)
        for ans in answers:  # the best first, so that the splits below prune more
            if ans is not None and ans[1] < best_j:
                best_m, best_j = np.asarray(ans[0]).copy(), float(ans[1])
        for (_, a, c), ans in zip(todo, answers, strict=True):
            if ans is None:  # nothing fits by c, so nothing in (a, c]
                continue
            _, _, g, t = ans
            if closes(g + queue * a):
                continue
            right = min(t, c) * (1 - skip)  # (a, t) is left, g >= C(m) there
            if right <= a:
                continue
            mid = a + 0.5 * (right - a)
            heapq.heappush(heap, (g + queue * a, a, mid))
            heapq.heappush(heap, (g + queue * mid, mid, right))
    open_ = [b for b, _, _ in heap if not closes(b)]
    gap = 0.0 if not open_ else max(best_j - min(open_), 0.0) / max(abs(best_j), 1e-300)
    return SearchResult(best_m, best_j, queries, gap, answered)
