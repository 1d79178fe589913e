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


def truncation_errors(state: State, chosen: dict[str, torch.Tensor],
                      rank: int) -> tuple[float, float]:
    """Mean relative errors ``||BA - B_S A_S||_F / ||BA||_F`` of the kept ranks S and of the
    best rank-|S| approximation (the SVD oracle), over the sites with both factors."""
    from wirelessfl.learning.aggregators.lowrank import product_svd

    errs, oracle = [], []
    for a, b in site_names(state):
        if a is None:
            continue
        bb, aa = state[b][:, :rank].double(), state[a][:rank].double()
        full = bb @ aa
        norm = float(full.norm())
        if norm == 0:
            continue
        idx = chosen[b]
        errs.append(float((full - bb[:, idx] @ aa[idx]).norm()) / norm)
        _, s, _ = product_svd(bb, aa)
        m = len(idx)
        oracle.append(math.sqrt(float((s[m:] ** 2).sum())) / norm)
    if not errs:
        return 0.0, 0.0
    return float(np.mean(errs)), float(np.mean(oracle))
