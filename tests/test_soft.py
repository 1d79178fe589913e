"""SOFT: SVD-free truncation, the orthogonality penalty, payloads, reconstruction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wirelessfl.compression.ranks import (
    energy_error_profile,
    importance,
    random_subset_error_profile,
)
from wirelessfl.compression.soft import (
    SOFT,
    RandomRanks,
    SoftParams,
    orthogonality_residual,
    penalty,
)
from wirelessfl.compression.topk import TopK
from wirelessfl.learning.aggregators.lowrank import product_svd
from wirelessfl.learning.client import ClientUpdate

A_N, B_N = "m.lora_A.default.weight", "m.lora_B.default.weight"


def orthogonal_factors(r=6, d_in=20, d_out=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    qa, _ = torch.linalg.qr(torch.randn(d_in, r, generator=g, dtype=torch.float64))
    qb, _ = torch.linalg.qr(torch.randn(d_out, r, generator=g, dtype=torch.float64))
    scale_a = torch.rand(r, generator=g, dtype=torch.float64) * 3 + 0.1
    scale_b = torch.rand(r, generator=g, dtype=torch.float64) * 3 + 0.1
    return (qa * scale_a).T.float(), (qb * scale_b).float()  # A (r, d_in), B (d_out, r)


def update(a, b, head=None, rank=None):
    st = {A_N: a, B_N: b, "head.weight": head if head is not None else torch.ones(2, 3)}
    return ClientUpdate(0, 10, st, 0.0, rank or a.shape[0])


@pytest.mark.parametrize("m", [1, 2, 4, 6])
def test_soft_equals_truncated_svd_when_factors_are_orthogonal(m):
    a, b = orthogonal_factors()
    glob = {A_N: torch.zeros_like(a), B_N: torch.zeros_like(b), "head.weight": torch.zeros(2, 3)}
    out = SOFT(SoftParams(lambda_orth=0.0)).compress(update(a, b), glob, 32, m, None)
    sent = out.update.state
    u, s, vh = product_svd(b.double(), a.double())
    best = (u[:, :m] * s[:m]) @ vh[:m]
    assert torch.allclose((sent[B_N] @ sent[A_N]).double(), best, atol=1e-5)
    assert out.metrics["trunc_err"] == pytest.approx(out.metrics["svd_trunc_err"], abs=1e-6)
    # eps(m) from the importances is exactly the squared relative error
    eps = energy_error_profile(importance(update(a, b).state, 6))
    assert eps[m] == pytest.approx(out.metrics["trunc_err"] ** 2, abs=1e-6)
    assert orthogonality_residual(update(a, b).state) < 1e-6


def gaussian_pair(seed, r=6, d_in=20, d_out=16):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(r, d_in, generator=g, dtype=torch.float64),
            torch.randn(d_out, r, generator=g, dtype=torch.float64))


def test_soft_on_generic_factors_against_the_best_subset_and_random():
    """Over 300 draws of i.i.d. Gaussian factors (zero global LoRA), m = 2 of 6 ranks:
    SOFT's rebuild error is never below the exhaustive best subset (it is one), is
    within 1.5x of it in at least 95% of draws and within 2x in all, and beats the
    expected error of a random choice on average."""
    ratios, soft_sum, rnd_sum = [], 0.0, 0.0
    for seed in range(300):
        a, b = gaussian_pair(seed)
        glob = {A_N: torch.zeros_like(a), B_N: torch.zeros_like(b),
                "head.weight": torch.zeros(2, 3)}
        met = SOFT(SoftParams(lambda_orth=0.0)).compress(update(a, b), glob, 32, 2,
                                                         None).metrics
        assert met["subset_oracle_err"] <= met["trunc_err"] + 1e-12
        ratios.append(met["trunc_err"] / met["subset_oracle_err"])
        soft_sum += met["trunc_err"] ** 2
        rnd_sum += random_subset_error_profile(update(a, b).state, glob, 6)[2]
    ratios = np.array(ratios)
    assert np.mean(ratios <= 1.5) >= 0.95 and ratios.max() < 2.0
    assert soft_sum < rnd_sum


def test_the_penalty_pulls_towards_orthogonality():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(6, 20, generator=g) * torch.linspace(2, 0.1, 6)[:, None]
    b = torch.randn(16, 6, generator=g)
    params = {A_N: torch.nn.Parameter(a.clone()), B_N: torch.nn.Parameter(b.clone())}
    before = float(penalty(params).detach())
    opt = torch.optim.SGD(params.values(), lr=1e-3)
    for _ in range(200):
        opt.zero_grad()
        penalty(params).backward()
        opt.step()
    assert float(penalty(params).detach()) < 0.2 * before


@pytest.mark.parametrize("seed", range(5))
def test_reported_error_is_the_error_the_fedit_aggregate_suffers(seed):
    """Unsent ranks revert to the global values under FedIT. With one client, the
    aggregate is the rebuild, so eps(m) must equal the measured squared deviation of
    the aggregate's product from the full-upload aggregate's, relative to the
    client's change. With several clients, the error of the average of products is
    the p-weighted sum of the clients' errors, bounded by the reported values."""
    from wirelessfl.learning.aggregators.fedit import FedIT

    g = torch.Generator().manual_seed(seed)
    r = 6
    glob = {A_N: torch.randn(r, 20, generator=g, dtype=torch.float64),
            B_N: torch.randn(16, r, generator=g, dtype=torch.float64),
            "head.weight": torch.zeros(2, 3, dtype=torch.float64)}
    clients = []
    for k in range(3):
        st = {n: t + 0.5 * torch.randn(t.shape, generator=g, dtype=torch.float64)
              for n, t in glob.items()}
        clients.append(ClientUpdate(k, 10 + 5 * k, st, 0.0, r))
    soft = SOFT(SoftParams(lambda_orth=0.0))
    def prod(st):
        return st[B_N] @ st[A_N]

    for m in range(r + 1):
        u = clients[0]
        eps = soft.error_profile(u, glob)
        full, _ = FedIT().aggregate(glob, [u])
        sent = soft.compress(u, glob, 32, m, None).update if m > 0 else \
            ClientUpdate(0, 10, dict(glob), 0.0, r)
        part, _ = FedIT().aggregate(glob, [sent])
        change = prod(u.state) - prod(glob)
        measured = float((prod(part) - prod(full)).norm() ** 2 / change.norm() ** 2)
        assert eps[m] == pytest.approx(measured, rel=1e-6, abs=1e-9)
    # several clients, m = 2: ||sum p_k E_k|| <= sum p_k ||E_k|| = sum p_k sqrt(eps_k) ||C_k||
    p = np.array([c.num_samples for c in clients], dtype=float)
    p /= p.sum()
    err = sum(pk * (prod(soft.compress(c, glob, 32, 2, None).update.state) - prod(c.state))
              for pk, c in zip(p, clients, strict=True))
    bound = sum(pk * np.sqrt(soft.error_profile(c, glob)[2])
                * float((prod(c.state) - prod(glob)).norm())
                for pk, c in zip(p, clients, strict=True))
    assert float(err.norm()) <= bound * (1 + 1e-9)


def test_random_profile_is_the_expected_error_of_a_random_choice():
    a, b = gaussian_pair(7, r=5)
    glob = {A_N: 0.3 * a.flip(0), B_N: 0.3 * b.flip(1), "head.weight": torch.zeros(2, 3)}
    u = update(a, b, rank=5)
    prof = RandomRanks().error_profile(u, glob)
    rng = np.random.default_rng(0)
    for m in (1, 3):
        draws = [RandomRanks().compress(u, glob, 32, m, rng).metrics["trunc_err"] ** 2
                 for _ in range(3000)]
        assert prof[m] == pytest.approx(np.mean(draws), rel=0.05)


def test_soft_payload_and_server_reconstruction():
    a, b = orthogonal_factors(r=8)
    glob = {A_N: torch.full_like(a, 7.0), B_N: torch.full_like(b, 7.0),
            "head.weight": torch.zeros(2, 3)}
    out = SOFT().compress(update(a, b), glob, 16, 3, None)
    # values of 3 ranks of A (20) and B (16), the head (6), and 3 * ceil(log2 8) index bits
    assert out.payload_bits == 16 * (3 * (20 + 16) + 6) + 3 * 3
    sent = out.update.state
    kept = [i for i in range(8) if not torch.all(sent[A_N][i] == 7.0)]
    assert len(kept) == 3
    dropped = [i for i in range(8) if i not in kept]
    assert torch.all(sent[A_N][dropped] == 7.0) and torch.all(sent[B_N][:, dropped] == 7.0)
    assert torch.equal(sent[A_N][kept], a[kept])  # sent ranks arrive as trained
    full = SOFT().payload_bits({A_N: (8, 20), B_N: (16, 8), "head.weight": (2, 3)}, 8, 16, 8)
    assert full == 16 * (8 * 36 + 6)  # all ranks: no index bits


def test_topk_keeps_the_largest_changes_and_pays_index_bits():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(4, 10, generator=g), torch.randn(8, 4, generator=g)
    glob = {A_N: torch.zeros_like(a), B_N: torch.zeros_like(b), "head.weight": torch.zeros(2, 3)}
    out = TopK().compress(update(a, b), glob, 32, 2, None)
    sent = out.update.state
    assert int((sent[A_N] != 0).sum()) == 20 and int((sent[B_N] != 0).sum()) == 16
    thresh = torch.sort(a.abs().flatten(), descending=True).values[19]
    assert torch.all(sent[A_N][sent[A_N] != 0].abs() >= thresh)
    assert out.payload_bits == 20 * (32 + math.ceil(math.log2(40))) + \
        16 * (32 + math.ceil(math.log2(32))) + 6 * 32


def test_random_ranks_costs_what_soft_costs():
    shapes = {A_N: (8, 20), B_N: (16, 8), "head.weight": (2, 3)}
    for m in range(1, 9):
        assert RandomRanks().payload_bits(shapes, 8, 32, m) == SOFT().payload_bits(shapes, 8,
                                                                                   32, m)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_topk_error_profile_is_the_error_of_what_compress_sends(seed):
    """eps(m) for every m equals the squared relative error of the product the server
    rebuilds from compress(..., m), computed here densely from the sent tensors."""
    g = torch.Generator().manual_seed(seed)
    r = 5
    a, b = torch.randn(r, 12, generator=g), torch.randn(9, r, generator=g)
    ga, gb = torch.randn(r, 12, generator=g) * 0.3, torch.randn(9, r, generator=g) * 0.3
    glob = {A_N: ga, B_N: gb, "head.weight": torch.zeros(2, 3)}
    up = update(a, b)
    eps = TopK().error_profile(up, glob)
    assert eps.shape == (r + 1,)
    full = (b.double() @ a.double())
    change = float(((full - gb.double() @ ga.double()) ** 2).sum())
    for m in range(1, r):
        sent = TopK().compress(up, glob, 32, m, None).update.state
        rebuilt = sent[B_N].double() @ sent[A_N].double()
        want = float(((rebuilt - full) ** 2).sum()) / change
        assert eps[m] == pytest.approx(want, rel=1e-6)  # sent tensors are float32
    assert eps[0] == pytest.approx(1.0, rel=1e-12) and eps[r] == 0.0
    assert np.all(np.diff(eps) <= 1e-12)  # keeping more entries never hurts here
