"""Rank algebra of LoRA updates shared by the rank-sparsifying compressors (torch)."""

from __future__ import annotations

import math

import numpy as np
import torch

from wirelessfl.learning.adapter import State
from wirelessfl.learning.lora import LORA_A, LORA_B
from wirelessfl.network.payload import dense_bits, rank_index_bits


def client_rank(update) -> int:
    """The client's rank r_k (its update's, or the allocated rank of its B factors)."""
    return update.rank or next(t.shape[1] for n, t in update.state.items() if n.endswith(LORA_B))


def rank_and_keep(update, keep: int | None) -> tuple[dict[str, tuple[int, ...]], int, int]:
    """``(shapes, r, m)``: tensor shapes, the client's rank and the kept ranks in [1, r]."""
    r = client_rank(update)
    m = r if keep is None else max(1, min(int(keep), r))
    return {n: tuple(t.shape) for n, t in update.state.items()}, r, m


def site_names(state: State) -> list[tuple[str | None, str]]:
    """``(A_name or None, B_name)`` per adapted matrix (A absent when frozen, FFA)."""
    out = []
    for n in state:
        if n.endswith(LORA_B):
            a = n[: -len(LORA_B)] + LORA_A
            out.append((a if a in state else None, n))
    return out


def importance(state: State, rank: int) -> torch.Tensor:
    """Per-rank importance ``s_i = ||b_i|| ||a_i||`` per site, shape (n_sites, rank).

    ``b_i`` is column i of B, ``a_i`` row i of A. When A is frozen and not sent
    (FFA) the importance is ``||b_i||``.
    """
    rows = []
    for a, b in site_names(state):
        s = state[b][:, :rank].double().norm(dim=0)
        if a is not None:
            s = s * state[a][:rank].double().norm(dim=1)
        rows.append(s)
    return torch.stack(rows) if rows else torch.zeros(0, rank, dtype=torch.float64)


def energy_error_profile(s: torch.Tensor) -> np.ndarray:
    """``eps(m) = mean over sites of sum_{i not in top m} s_i^2 / sum_i s_i^2``, m = 0..r.

    With (near-)orthogonal factors this is the squared relative truncation error of
    each site's product ``B A`` when only the top m ranks are kept. Shape (r + 1,).
    """
    if s.numel() == 0:
        return np.zeros(1)
    e = torch.sort(s.double() ** 2, dim=1, descending=True).values
    total = e.sum(dim=1, keepdim=True).clamp_min(1e-300)
    kept = torch.cat([torch.zeros_like(total), torch.cumsum(e, dim=1)], dim=1) / total
    eps = (1.0 - kept).clamp_min(0.0).mean(dim=0)
    eps[-1] = 0.0
    return eps.numpy()


def change_grams(state: State, ref: State, rank: int) -> list[torch.Tensor]:
    """Per site, the Gram matrix of the per-rank changes, shape (rank, rank) each (float64).

    The server rebuilds an upload rank by rank: a sent rank i carries the client's
    ``b_i a_i^T``, an unsent one keeps the reference's (the global adapter's)
    ``bg_i ag_i^T``. With ``D_i = b_i a_i^T - bg_i ag_i^T`` the change of rank i, the
    client's change is ``sum_i D_i`` and ``G_ij = <D_i, D_j>_F = (b_i . b_j)(a_i . a_j)
    - (b_i . bg_j)(a_i . ag_j) - (bg_i . b_j)(ag_i . a_j) + (bg_i . bg_j)(ag_i . ag_j)``,
    computed from r x r products only. With A frozen and not sent (FFA) the rows of A
    are taken orthonormal, ``G = diag((B - Bg)^T (B - Bg))``.
    """
    out = []
    for a, b in site_names(state):
        bb = state[b][:, :rank].double()
        bg = ref[b][:, :rank].double()
        if a is None:
            db = bb - bg
            out.append(torch.diag((db * db).sum(dim=0)))
            continue
        aa, ag = state[a][:rank].double(), ref[a][:rank].double()
        out.append((bb.T @ bb) * (aa @ aa.T) - (bb.T @ bg) * (aa @ ag.T)
                   - (bg.T @ bb) * (ag @ aa.T) + (bg.T @ bg) * (ag @ ag.T))
    return out


def change_importance(state: State, ref: State, rank: int) -> torch.Tensor:
    """``||b_i a_i^T - bg_i ag_i^T||_F`` per site and rank, shape (n_sites, rank).

    What sending rank i is worth when the server keeps the reference's rank i
    otherwise. With a zero reference (LoRA restarted) it is SOFT's ``||b_i|| ||a_i||``.
    """
    grams = change_grams(state, ref, rank)
    if not grams:
        return torch.zeros(0, rank, dtype=torch.float64)
    return torch.stack([torch.diagonal(g).clamp_min(0).sqrt() for g in grams])


def subset_error(g: torch.Tensor, kept: torch.Tensor) -> float:
    """``||sum_{i not kept} D_i||_F^2 / ||sum_i D_i||_F^2`` from the change Gram ``g``."""
    total = float(g.sum())
    if total <= 0:
        return 0.0
    drop = torch.ones(g.shape[0], dtype=torch.bool)
    drop[kept] = False
    return max(float(g[drop][:, drop].sum()), 0.0) / total


def reconstruction_error_profile(state: State, ref: State, rank: int) -> np.ndarray:
    """``eps(m)``, m = 0..rank: the squared relative error of the server's rebuild.

    Per site the m ranks with the largest :func:`change_importance` are sent and the
    others keep the reference's values; ``eps(m)`` is the mean over sites of
    ``||(rebuilt change) - (client's change)||_F^2 / ||client's change||_F^2``, exact
    (from :func:`change_grams`, no orthogonality assumed). ``eps(0) = 1``, ``eps(r) = 0``.
    """
    grams = change_grams(state, ref, rank)
    if not grams:
        return np.zeros(rank + 1)
    out = np.zeros(rank + 1)
    for g in grams:
        order = torch.argsort(torch.diagonal(g), descending=True)
        out += np.array([subset_error(g, order[:m]) for m in range(rank + 1)])
    out /= len(grams)
    out[-1] = 0.0
    return out


def random_subset_error_profile(state: State, ref: State, rank: int) -> np.ndarray:
    """Expected ``eps(m)`` when the m sent ranks are drawn uniformly (exact expectation).

    For a uniform set U of ``u = r - m`` unsent ranks, ``E[1^T G_UU 1] = (u / r) tr G +
    u (u - 1) / (r (r - 1)) (1^T G 1 - tr G)``.
    """
    grams = change_grams(state, ref, rank)
    r = rank
    out = np.zeros(rank + 1)
    for g in grams:
        total, tr = float(g.sum()), float(torch.trace(g))
        if total <= 0:
            continue
        for m in range(r + 1):
            u = r - m
            pair = u * (u - 1) / (r * (r - 1)) if r > 1 else 0.0
            out[m] += ((u / r) * tr + pair * (total - tr)) / total
    out /= max(len(grams), 1)
    out[-1] = 0.0
    return out


def rank_payload_bits(shapes: dict[str, tuple[int, ...]], rank: int, bits_per_value: int,
                      keep: int) -> int:
    """Values of the kept ranks of every site plus the head, and ``m ceil(log2 r)`` index
    bits per site when not every rank is sent."""
    from wirelessfl.learning.lora import numels_at_rank

    m = max(0, min(keep, rank))
    n_sites = sum(1 for n in shapes if n.endswith(LORA_B))
    return dense_bits(numels_at_rank(shapes, m).values(), bits_per_value) + n_sites * \
        rank_index_bits(m, rank)


def keep_ranks(state: State, global_state: State, chosen: dict[str, torch.Tensor]) -> State:
    """The update as the server reconstructs it: ``chosen[B_name]`` ranks from the client,
    every other rank (and nothing else) from ``global_state`` ("no change")."""
    out = {n: t.clone() for n, t in state.items()}
    for a, b in site_names(state):
        drop = torch.ones(state[b].shape[1], dtype=torch.bool)
        drop[chosen[b]] = False
        out[b][:, drop] = global_state[b][:, drop]
        if a is not None:
            out[a][drop] = global_state[a][drop]
    return out


def truncation_errors(state: State, ref: State, chosen: dict[str, torch.Tensor],
                      rank: int) -> dict[str, float]:
    """Relative errors of the server's rebuild of the client's change, mean over sites.

    With ``C = B A - Bg Ag`` the client's change and ``C~`` the rebuild from the sent
    ranks ``S`` (others from the reference), the logged values are

    * ``trunc_err``: ``||C~ - C||_F / ||C||_F`` of the ranks ``chosen``;
    * ``subset_oracle_err``: the same for the best set of ``|S|`` ranks (exhaustive
      over the subsets; NaN above 16 ranks);
    * ``svd_trunc_err``: ``||C - C_m||_F / ||C||_F`` for the best rank-|S| matrix
      ``C_m`` (SVD of C, a lower bound no rank selection can beat in general).
    """
    from itertools import combinations

    from wirelessfl.learning.aggregators.lowrank import product_svd

    errs, best, svd = [], [], []
    for (a, b), g in zip(site_names(state), change_grams(state, ref, rank), strict=True):
        total = float(g.sum())
        if total <= 0:
            continue
        idx = chosen[b]
        m = len(idx)
        errs.append(math.sqrt(subset_error(g, idx)))
        if rank <= 16:
            best.append(math.sqrt(min(subset_error(g, torch.tensor(c, dtype=torch.long))
                                      for c in combinations(range(rank), m))))
        if a is not None:
            bs = torch.cat([state[b][:, :rank].double(), -ref[b][:, :rank].double()], dim=1)
            as_ = torch.cat([state[a][:rank].double(), ref[a][:rank].double()], dim=0)
            _, s, _ = product_svd(bs, as_)
            svd.append(math.sqrt(float((s[m:] ** 2).sum()) / max(float((s**2).sum()), 1e-300)))
    def mean(v: list[float]) -> float:
        return float(np.mean(v)) if v else 0.0

    return {"trunc_err": mean(errs),
            "subset_oracle_err": mean(best) if rank <= 16 else float("nan"),
            "svd_trunc_err": mean(svd)}
