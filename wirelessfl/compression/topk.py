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
from wirelessfl.compression.ranks import client_rank, rank_and_keep, site_names
from wirelessfl.learning.adapter import State
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.lora import LORA_A, LORA_B, numels_at_rank


def _kept(n: int, m: int, r: int) -> int:
    return min(n, math.ceil(m / r * n)) if r > 0 else n


def _sparse_change(own: torch.Tensor, ref: torch.Tensor, m: int, r: int) -> torch.Tensor:
    """``ref`` plus the ``_kept(n, m, r)`` largest-magnitude entries of ``own - ref``."""
    delta = (own - ref).flatten()
    k = _kept(delta.numel(), m, r)
    sparse = torch.zeros_like(delta)
    if k > 0:
        idx = torch.topk(delta.abs(), k).indices
        sparse[idx] = delta[idx]
    return ref + sparse.view_as(ref)


@register_compressor("topk")
class TopK(Compressor):
    """Top-k magnitude sparsification of each LoRA tensor's change."""

    sparsifies = True
    needs_lora = True

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

    def error_profile(self, update: ClientUpdate, reference: State) -> np.ndarray:
        """``eps(m)``, m = 0..r: the exact squared relative error of the rebuilt product.

        Mean over sites of ``||B'_m A'_m - B A||_F^2 / ||B A - B_g A_g||_F^2`` with
        ``A'_m``, ``B'_m`` what :meth:`compress` rebuilds for m kept ranks (float64).
        With A frozen and not sent (FFA) the rows of A are taken orthonormal, so the
        error is that of B alone. ``eps(0) = 1`` and ``eps(r) = 0``. Shape (r + 1,).
        """
        r = client_rank(update)
        out = np.zeros(r + 1)
        sites = site_names(update.state)
        for a_name, b_name in sites:
            b = update.state[b_name][:, :r].double()
            bg = reference[b_name][:, :r].double()
            if a_name is None:
                a = ag = torch.eye(r, dtype=torch.float64)
            else:
                a = update.state[a_name][:r].double()
                ag = reference[a_name][:r].double()
            full = b @ a
            total = float(((full - bg @ ag) ** 2).sum())
            if total <= 0:
                continue
            for m in range(r + 1):
                b_m = _sparse_change(b, bg, m, r)
                a_m = a if a_name is None else _sparse_change(a, ag, m, r)
                out[m] += float(((b_m @ a_m - full) ** 2).sum()) / total
        out /= max(len(sites), 1)
        out[-1] = 0.0  # every entry kept: only float rounding is left
        return out

    def compress(self, update: ClientUpdate, global_state: State, bits_per_value: int,
                 keep: int | None, rng: np.random.Generator) -> Compressed:
        shapes, r, m = rank_and_keep(update, keep)
        out = {n: t.clone() for n, t in update.state.items()}
        if m < r:
            for name, t in update.state.items():
                if not name.endswith((LORA_A, LORA_B)):
                    continue
                new = global_state[name].clone()
                if name.endswith(LORA_A):
                    new[:r] = _sparse_change(t[:r], global_state[name][:r], m, r)
                else:
                    new[:, :r] = _sparse_change(t[:, :r], global_state[name][:, :r], m, r)
                out[name] = new
        sent = ClientUpdate(update.client_id, update.num_samples, out, update.train_loss,
                            update.rank, update.metrics)
        return Compressed(sent, self.payload_bits(shapes, r, bits_per_value, m))
