"""Low-rank algebra on stacked LoRA factors (pure functions, float64).

For client factors ``B_k`` (d_out x r_k), ``A_k`` (r_k x d_in) and weights ``p_k``:

    B_s = [B_1 .. B_K]           (d_out x R),   R = sum r_k
    A_s = [p_1 A_1; ..; p_K A_K] (R x d_in)
    B_s A_s = sum_k p_k B_k A_k  exactly (the weight is applied once, on A).

Its SVD is computed without forming the d_out x d_in product: with
``B_s = Q_B R_B`` and ``A_s^T = Q_A R_A`` (thin QR), ``B_s A_s = Q_B (R_B R_A^T) Q_A^T``,
and the SVD ``R_B R_A^T = U S V^T`` of the small R x R core gives
``B_s A_s = (Q_B U) S (Q_A V)^T``.
"""

from __future__ import annotations

import torch


def stack(bs: list[torch.Tensor], as_: list[torch.Tensor], p: torch.Tensor,
          ranks: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B_s, A_s)`` of the first ``ranks[k]`` ranks of each client, p on the A blocks."""
    b_s = torch.cat([b[:, :r].double() for b, r in zip(bs, ranks, strict=True)], dim=1)
    a_s = torch.cat([pk * a[:r].double() for pk, a, r in zip(p, as_, ranks, strict=True)],
                    dim=0)
    return b_s, a_s


def product_svd(b: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                           torch.Tensor]:
    """SVD of ``b @ a`` from the factors: ``U`` (d_out, q), ``S`` (q,), ``Vh`` (q, d_in).

    ``q = min(d_out, d_in, R)``; cost O((d_out + d_in) R^2 + R^3), never d_out d_in.
    """
    qb, rb = torch.linalg.qr(b.double())
    qa, ra = torch.linalg.qr(a.double().T)
    u, s, vh = torch.linalg.svd(rb @ ra.T, full_matrices=False)
    return qb @ u, s, vh @ qa.T


def energy_rank(s: torch.Tensor, tau: float) -> int:
    """Smallest p with ``sum_{j<=p} s_j^2 >= tau sum_j s_j^2`` (at least 1).

    ``tau = 1`` keeps every non-zero singular value; an all-zero spectrum gives 1.
    """
    e = s.double() ** 2
    total = float(e.sum())
    if total <= 0:
        return 1
    if tau >= 1.0:
        return max(1, int((s > s[0] * 1e-12).sum()))
    cum = torch.cumsum(e, 0) / total
    return int(torch.searchsorted(cum, torch.tensor(tau, dtype=cum.dtype)).item()) + 1
