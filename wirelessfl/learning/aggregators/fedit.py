"""FedIT: average the LoRA factors A and B separately (FedAvg on the adapter).

With weights ``p_k = n_k / sum n``, the server keeps ``A_avg = sum p_k A_k`` and
``B_avg = sum p_k B_k``; the global LoRA persists across rounds. The product of
the averages is not the average of the products:

    sum_k p_k B_k A_k = B_avg A_avg + sum_k p_k (B_k - B_avg)(A_k - A_avg),

and the second term, the covariance error C, is logged each round as
``||C||_F / ||sum_k p_k B_k A_k||_F`` (``fedit_cov_rel``), averaged over the
adapted matrices. Both norms are computed from r K x r K Gram matrices of the
stacked factors, never from d_out x d_in products.
"""

from __future__ import annotations

import torch

from wirelessfl.learning.adapter import State, lora_pairs
from wirelessfl.learning.aggregators.base import (
    Aggregator,
    register_aggregator,
    sample_weights,
    weighted_average,
)
from wirelessfl.learning.client import ClientUpdate


def stacked_frobenius(bs: list[torch.Tensor], as_: list[torch.Tensor],
                      w: torch.Tensor) -> torch.Tensor:
    """``||sum_k w_k B_k A_k||_F``, exactly, at a cost linear in the number of clients K.

    With ``B_s = [B_1 .. B_K]`` (d_out x rK) and ``A_s = [w_1 A_1; ..; w_K A_K]``
    (rK x d_in), ``sum w_k B_k A_k = B_s A_s``. The smaller side is used: when
    ``rK <= min(d_out, d_in)``, ``||B_s A_s||_F^2 = trace((B_s^T B_s)(A_s A_s^T))``
    through two rK x rK Gram matrices; otherwise the d_out x d_in product
    ``B_s A_s`` itself (O(K r d_out d_in) time, O(d_out d_in) memory), never the
    rK x rK Grams, whose cost grows as K^2 to K^3.
    """
    b_s = torch.cat([b.to(torch.float64) for b in bs], dim=1)
    a_s = torch.cat([wk * a.to(torch.float64) for wk, a in zip(w, as_, strict=True)], dim=0)
    if b_s.shape[1] <= min(b_s.shape[0], a_s.shape[1]):
        val = torch.trace((b_s.T @ b_s) @ (a_s @ a_s.T)).clamp_min(0).sqrt()
        return val
    return torch.linalg.matrix_norm(b_s @ a_s)


def covariance_error(bs: list[torch.Tensor], as_: list[torch.Tensor],
                     w: torch.Tensor) -> tuple[float, float]:
    """``(||C||_F, ||sum w_k B_k A_k||_F)`` for one adapted matrix.

    ``C = sum_k w_k (B_k - B_avg)(A_k - A_avg)``, with ``sum w = 1``.
    """
    b_avg = sum(wk * b.to(torch.float64) for wk, b in zip(w, bs, strict=True))
    a_avg = sum(wk * a.to(torch.float64) for wk, a in zip(w, as_, strict=True))
    cov = stacked_frobenius([b - b_avg for b in bs], [a - a_avg for a in as_], w)
    full = stacked_frobenius(bs, as_, w)
    return float(cov), float(full)


@register_aggregator("fedit")
class FedIT(Aggregator):
    """Separate weighted averages of every trainable tensor (A, B and the head)."""

    def aggregate(self, global_state: State,
                  updates: list[ClientUpdate]) -> tuple[State, dict[str, float]]:
        p = sample_weights(updates)
        new = {n: weighted_average([u.state[n] for u in updates], p) for n in global_state}
        ratios = []
        for a_name, b_name in lora_pairs(global_state):
            cov, full = covariance_error([u.state[b_name] for u in updates],
                                         [u.state[a_name] for u in updates], p)
            ratios.append(cov / full if full > 0 else 0.0)
        return new, {"fedit_cov_rel": float(sum(ratios) / len(ratios)) if ratios else 0.0}
