"""Learning pieces: partitions, payload from the live adapter, FedIT's exact identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wirelessfl.learning.adapter import get_state, lora_pairs, numels, set_state
from wirelessfl.learning.aggregators.fedit import FedIT, covariance_error, stacked_frobenius
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.data import make_synthetic
from wirelessfl.learning.models import build_base, wrap_lora
from wirelessfl.learning.partition import dirichlet_partition, iid_partition, stratified_split


@pytest.fixture(scope="module")
def tiny_model():
    base = build_base("tiny-bert", num_labels=3, vocab_size=100, max_length=16, pooling="mean",
                      seed=0)
    return wrap_lora(base, rank=4, alpha=8, dropout=0.0, target_modules=["query", "value"],
                     seed=1)


def test_payload_counts_exactly_the_trainable_lora_and_head_values(tiny_model):
    state = get_state(tiny_model)
    # 2 layers x (query, value) x r (d_in + d_out) = 2 * 2 * 4 * (64 + 64); head 64 * 3 + 3
    expected = 2 * 2 * 4 * (64 + 64) + 64 * 3 + 3
    assert sum(numels(state).values()) == expected
    assert sum(p.numel() for p in tiny_model.parameters() if p.requires_grad) == expected
    assert len(lora_pairs(state)) == 4


def test_set_state_round_trips_in_place(tiny_model):
    state = get_state(tiny_model)
    ids_before = {n: id(p) for n, p in tiny_model.named_parameters()}
    new = {n: torch.randn_like(t) for n, t in state.items()}
    set_state(tiny_model, new)
    back = get_state(tiny_model)
    assert all(torch.equal(back[n], new[n]) for n in new)
    assert ids_before == {n: id(p) for n, p in tiny_model.named_parameters()}
    set_state(tiny_model, state)


def test_stratified_split_and_partitions_cover_the_training_set():
    data = make_synthetic(500, 4, 100, 3, 10, np.random.default_rng(0))
    y = data.labels.numpy()
    train, test = stratified_split(y, 0.2, np.random.default_rng(1))
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 500
    for c in range(4):
        assert abs(np.mean(y[test] == c) - np.mean(y == c)) < 0.02
    for shards in (iid_partition(train, 7, np.random.default_rng(2)),
                   dirichlet_partition(train, y, 7, 0.3, np.random.default_rng(2), 5)):
        allidx = np.concatenate(shards)
        assert sorted(allidx.tolist()) == sorted(train.tolist())  # disjoint and complete
        assert min(len(s) for s in shards) >= 5


def test_small_dirichlet_alpha_skews_labels_more():
    y = np.repeat(np.arange(5), 400)
    idx = np.arange(len(y))

    def mean_max_share(alpha):
        shards = dirichlet_partition(idx, y, 10, alpha, np.random.default_rng(0), 1)
        return np.mean([np.bincount(y[s], minlength=5).max() / len(s) for s in shards])

    assert mean_max_share(0.1) > mean_max_share(100.0) + 0.3


def random_factors(k=4, r=3, d_in=11, d_out=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = [torch.randn(r, d_in, generator=g, dtype=torch.float64) for _ in range(k)]
    b = [torch.randn(d_out, r, generator=g, dtype=torch.float64) for _ in range(k)]
    w = torch.rand(k, generator=g, dtype=torch.float64)
    return a, b, w / w.sum()


def test_stacked_frobenius_equals_the_dense_norm():
    a, b, w = random_factors()
    dense = sum(wk * bk @ ak for wk, ak, bk in zip(w, a, b, strict=True))
    assert float(stacked_frobenius(b, a, w)) == pytest.approx(float(dense.norm()), rel=1e-10)


def test_fedit_identity_and_covariance_error():
    a, b, w = random_factors()
    a_avg = sum(wk * ak for wk, ak in zip(w, a, strict=True))
    b_avg = sum(wk * bk for wk, bk in zip(w, b, strict=True))
    ideal = sum(wk * bk @ ak for wk, ak, bk in zip(w, a, b, strict=True))
    cov = sum(wk * (bk - b_avg) @ (ak - a_avg) for wk, ak, bk in zip(w, a, b, strict=True))
    assert torch.allclose(ideal, b_avg @ a_avg + cov, atol=1e-12)  # the exact identity
    c, full = covariance_error(b, a, w)
    assert c == pytest.approx(float(cov.norm()), rel=1e-9)
    assert full == pytest.approx(float(ideal.norm()), rel=1e-9)


def test_fedit_aggregator_weights_by_samples_and_logs_covariance():
    g = torch.Generator().manual_seed(0)
    names = ("m.lora_A.default.weight", "m.lora_B.default.weight", "head.weight")
    shapes = ((2, 5), (6, 2), (3, 5))
    ups = [ClientUpdate(k, n, {nm: torch.randn(s, generator=g) for nm, s in zip(names, shapes,
                                                                                strict=True)}, 0.0)
           for k, n in enumerate([10, 30])]
    glob = {nm: torch.zeros(s) for nm, s in zip(names, shapes, strict=True)}
    new, metrics = FedIT().aggregate(glob, ups)
    for nm in names:
        assert torch.allclose(new[nm], 0.25 * ups[0].state[nm] + 0.75 * ups[1].state[nm])
    a = [u.state[names[0]].double() for u in ups]
    b = [u.state[names[1]].double() for u in ups]
    c, full = covariance_error(b, a, torch.tensor([0.25, 0.75], dtype=torch.float64))
    assert metrics["fedit_cov_rel"] == pytest.approx(c / full, rel=1e-6)
    # identical clients: no covariance error
    _, m2 = FedIT().aggregate(glob, [ups[0], ClientUpdate(1, 5, ups[0].state, 0.0)])
    assert m2["fedit_cov_rel"] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("k, r, d_out, d_in", [(2, 2, 16, 12), (40, 4, 16, 12),
                                               (5, 3, 6, 40), (30, 8, 64, 64)])
def test_stacked_frobenius_both_sides_equal_the_gram_formula(k, r, d_out, d_in):
    """Either branch (Grams when rK is small, the d_out x d_in product otherwise) equals
    the rK x rK Gram formula it replaced, and the dense sum."""
    g = torch.Generator().manual_seed(k * 100 + r)
    a = [torch.randn(r, d_in, generator=g, dtype=torch.float64) for _ in range(k)]
    b = [torch.randn(d_out, r, generator=g, dtype=torch.float64) for _ in range(k)]
    w = torch.rand(k, generator=g, dtype=torch.float64)
    w = w / w.sum()
    b_s = torch.cat(b, dim=1)
    a_s = torch.cat([wk * ak for wk, ak in zip(w, a, strict=True)], dim=0)
    gram = float(torch.trace((b_s.T @ b_s) @ (a_s @ a_s.T)).sqrt())
    dense = float(sum(wk * bk @ ak for wk, ak, bk in zip(w, a, b, strict=True)).norm())
    got = float(stacked_frobenius(b, a, w))
    assert got == pytest.approx(gram, rel=1e-10) and got == pytest.approx(dense, rel=1e-10)


def test_step_flops_are_counted_on_one_sequence_and_exactly_linear_in_the_batch(tiny_model):
    from wirelessfl.learning.flops import _counted_flops, training_step_flops

    cpu = torch.device("cpu")
    one = _counted_flops(tiny_model, 1, 16, 100, cpu)
    direct = _counted_flops(tiny_model, 16, 16, 100, cpu)  # the old way: the whole batch
    assert one > 0 and direct == 16 * one
    assert training_step_flops(tiny_model, 16, 16, 100, cpu) == direct
    # a longer sequence costs more than linearly (attention), so length is not scaled
    assert _counted_flops(tiny_model, 1, 32, 100, cpu) > 2 * one


def test_eval_max_examples_bounds_the_test_set_with_a_fixed_subset(tiny_raw):
    """eval.max_examples: the run evaluates on exactly that many test examples, the same
    ones every time for a seed, drawn from the full test set; unset, nothing changes."""
    from wirelessfl.build import load_data
    from wirelessfl.learning.partition import split_shards
    from wirelessfl.scenario import parse_scenario

    full_sc = parse_scenario(tiny_raw)
    data = load_data(full_sc)
    full = split_shards(full_sc, data)
    tiny_raw["eval"] = {"max_examples": 7}
    sc = parse_scenario(tiny_raw)
    a, b = split_shards(sc, data), split_shards(sc, data)
    assert len(a.test) == 7 and a.test.tolist() == b.test.tolist()
    assert set(a.test.tolist()) <= set(full.test.tolist())
    assert [s.tolist() for s in a.train] == [s.tolist() for s in full.train]
    import wirelessfl

    assert wirelessfl.run(tiny_raw, output=None, rounds=1).finished
    tiny_raw["eval"] = {"max_examples": 10_000}  # above the test set: all of it
    assert split_shards(parse_scenario(tiny_raw), data).test.tolist() == full.test.tolist()
