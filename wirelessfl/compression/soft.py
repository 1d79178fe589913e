"""SOFT: sparsified orthogonal fine-tuning (SVD-free rank truncation of LoRA updates).

Clients add a near-orthogonality penalty to their loss,

    R(A, B) = mean over sites of ||A A^T - diag(A A^T)||_F^2 + ||B^T B - diag(B^T B)||_F^2,

weighted by ``lambda_orth``: only the off-diagonal parts are penalised, so the
per-rank norms stay free. With mutually orthogonal rows a_i of A and columns b_i
of B, ``B A = sum_i b_i a_i^T`` is an SVD with singular values ``s_i = ||b_i|| ||a_i||``,
so keeping the top m ranks by ``s_i`` is the best rank-m approximation of ``B A``
(Eckart-Young) without forming ``B A`` or running an SVD: O(r (d_in + d_out)) work
per site instead of O(d_out d_in r + d^3).

The client sends, per site, the m kept columns of B, rows of A and their indices
(``m ceil(log2 r)`` bits). The server fills the other ranks from the global adapter
the client started from. So what sending rank i is worth is its *change*
``||b_i a_i^T - bg_i ag_i^T||_F`` (equal to ``s_i`` when the global LoRA is zero, as
with FLoRA), the ranks are chosen by it, and the error profile reported to the
controller is the exact error of that rebuild (:mod:`wirelessfl.compression.ranks`).
Per client, ``clients.csv`` logs the error of SOFT's choice, of the best subset of
the same size, and of the SVD of the change at the same m.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from wirelessfl.compression.base import Compressed, Compressor, register_compressor
from wirelessfl.compression.ranks import (
    change_importance,
    client_rank,
    keep_ranks,
    random_subset_error_profile,
    rank_and_keep,
    rank_payload_bits,
    reconstruction_error_profile,
    truncation_errors,
)
from wirelessfl.learning.adapter import State, lora_pairs
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.lora import LORA_B


class SoftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lambda_orth: float = Field(0.1, ge=0, le=1e6, description="weight of the orthogonality penalty")
    oracle: bool = Field(True, description="log the SVD oracle's error (costs an SVD/site)")


def orthogonality_penalty(model: nn.Module) -> torch.Tensor:
    """``R(A, B)`` of a model's LoRA factors (see :func:`penalty`)."""
    return penalty(dict(model.named_parameters()))


def penalty(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """``R(A, B)``: mean over sites of the squared off-diagonal Gram norms.

    Factors may carry leading axes (``A`` (..., r, d_in), ``B`` (..., d_out, r), e.g.
    a client axis); the result then has those axes, one penalty per client.
    """
    terms = []
    for a_name, b_name in lora_pairs(params):
        a, b = params[a_name], params[b_name]
        for gram in (a @ a.mT, b.mT @ b):
            off = gram - torch.diag_embed(torch.diagonal(gram, dim1=-2, dim2=-1))
            terms.append((off**2).sum((-2, -1)))
    return torch.stack(terms).sum(0) / max(len(terms) // 2, 1) if terms else torch.zeros(())


def orthogonality_residual(state: State) -> float:
    """Mean over sites and factors of ``||offdiag(G)||_F / ||G||_F`` for G = A A^T, B^T B."""
    vals = []
    for a_name, b_name in lora_pairs(state):
        a, b = state[a_name].double(), state[b_name].double()
        for g in (a @ a.T, b.T @ b):
            norm = float(g.norm())
            if norm > 0:
                vals.append(float((g - torch.diag(torch.diagonal(g))).norm()) / norm)
    return float(np.mean(vals)) if vals else 0.0


def top_ranks(s: torch.Tensor, m: int) -> list[torch.Tensor]:
    """Indices of the m largest importances per site (sorted ascending)."""
    return [torch.sort(torch.topk(row, m).indices).values for row in s]


@register_compressor("soft")
class SOFT(Compressor):
    """Top-m ranks by ``||b_i|| ||a_i||`` per site; the orthogonality penalty in training."""

    Params = SoftParams
    sparsifies = True
    needs_lora = True

    def regularizer(self):
        lam = self.params.lambda_orth
        if lam == 0:
            return None
        return lambda tensors: lam * penalty(tensors)

    def payload_bits(self, shapes, rank, bits_per_value, keep_ranks):
        return rank_payload_bits(shapes, rank, bits_per_value,
                                 rank if keep_ranks is None else keep_ranks)

    def error_profile(self, update: ClientUpdate, reference: State) -> np.ndarray:
        """Exact squared relative error of the server's rebuild for m = 0..r (see ranks)."""
        return reconstruction_error_profile(update.state, reference, client_rank(update))

    def select(self, update: ClientUpdate, reference: State, m: int,
               rng: np.random.Generator) -> list:
        """The ranks to send per site: the m largest changes against the reference."""
        r = update.rank or m
        return top_ranks(change_importance(update.state, reference, r), m)

    def compress(self, update: ClientUpdate, global_state: State, bits_per_value: int,
                 keep: int | None, rng: np.random.Generator) -> Compressed:
        shapes, r, m = rank_and_keep(update, keep)
        sites = [n for n in update.state if n.endswith(LORA_B)]
        chosen = dict(zip(sites, self.select(update, global_state, m, rng), strict=True))
        metrics = {"orth_residual": orthogonality_residual(update.state)}
        if self.params.oracle:
            metrics.update(truncation_errors(update.state, global_state, chosen, r))
        sent = ClientUpdate(update.client_id, update.num_samples,
                            keep_ranks(update.state, global_state, chosen), update.train_loss,
                            update.rank, update.metrics)
        return Compressed(sent, self.payload_bits(shapes, r, bits_per_value, m), metrics)


@register_compressor("random")
class RandomRanks(SOFT):
    """m ranks chosen uniformly at random per site (same payload as SOFT); no penalty."""

    Params = SoftParams

    def regularizer(self):
        return None

    def error_profile(self, update: ClientUpdate, reference: State) -> np.ndarray:
        """The expected error of a uniform choice of m ranks (exact expectation)."""
        return random_subset_error_profile(update.state, reference, client_rank(update))

    def select(self, update: ClientUpdate, reference: State, m: int,
               rng: np.random.Generator) -> list:
        r = update.rank or m
        n_sites = sum(1 for n in update.state if n.endswith(LORA_B))
        return [torch.as_tensor(np.sort(rng.choice(r, m, replace=False)))
                for _ in range(n_sites)]
