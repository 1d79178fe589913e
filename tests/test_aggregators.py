"""Aggregators: exact identities on random factors and on whole tiny-bert runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wirelessfl.build import build_components
from wirelessfl.learning.adapter import get_state, set_state
from wirelessfl.learning.aggregators.florist import FLoRIST, FLoRISTParams
from wirelessfl.learning.aggregators.lowrank import energy_rank, product_svd, stack
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.lora import fresh_lora, lora_sites, numels_at_rank, truncate
from wirelessfl.learning.models import build_base, load_global_model, wrap_lora
from wirelessfl.results import read_csv
from wirelessfl.scenario import parse_scenario
from wirelessfl.session import play, run_scenario


def factors(ranks=(8, 4, 4, 2), d_in=40, d_out=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    bs = [torch.randn(d_out, r, generator=g, dtype=torch.float64) for r in ranks]
    as_ = [torch.randn(r, d_in, generator=g, dtype=torch.float64) for r in ranks]
    p = torch.rand(len(ranks), generator=g, dtype=torch.float64)
    return bs, as_, p / p.sum()


def ideal(bs, as_, p):
    return sum(pk * b @ a for pk, b, a in zip(p, bs, as_, strict=True))


def test_stacking_equals_the_weighted_sum_of_products_with_heterogeneous_ranks():
    bs, as_, p = factors()
    b_s, a_s = stack(bs, as_, p, [b.shape[1] for b in bs])
    assert b_s.shape == (48, 18) and a_s.shape == (18, 40)
    assert torch.allclose(b_s @ a_s, ideal(bs, as_, p), atol=1e-5)
    # the client order does not matter; the weight is applied exactly once
    perm = [2, 0, 3, 1]
    b2, a2 = stack([bs[i] for i in perm], [as_[i] for i in perm], p[perm], [4, 8, 2, 4])
    assert torch.allclose(b2 @ a2, b_s @ a_s, atol=1e-12)


def test_stacking_uses_only_each_clients_own_ranks():
    bs, as_, p = factors(ranks=(4, 4))
    padded_b = [bs[0], torch.cat([bs[1][:, :2], torch.ones(48, 2, dtype=torch.float64)], 1)]
    b_s, a_s = stack(padded_b, as_, p, [4, 2])
    expect = p[0] * bs[0] @ as_[0] + p[1] * bs[1][:, :2] @ as_[1][:2]
    assert torch.allclose(b_s @ a_s, expect, atol=1e-10)


def test_product_svd_matches_the_dense_svd_without_forming_it():
    bs, as_, p = factors()
    b_s, a_s = stack(bs, as_, p, [8, 4, 4, 2])
    u, s, vh = product_svd(b_s, a_s)
    dense = ideal(bs, as_, p)
    assert torch.allclose(s, torch.linalg.svdvals(dense)[: s.numel()], atol=1e-9)
    assert torch.allclose((u * s) @ vh, dense, atol=1e-9)
    assert torch.allclose(vh @ vh.T, torch.eye(vh.shape[0], dtype=torch.float64), atol=1e-10)


def test_energy_rank_properties():
    s = torch.tensor([5.0, 3.0, 1.0, 0.5], dtype=torch.float64)
    e = (s**2).cumsum(0) / (s**2).sum()  # 0.7246, 0.9855, 0.9982, 1
    assert energy_rank(s, 0.7) == 1 and energy_rank(s, 0.7247) == 2
    assert energy_rank(s, float(e[2])) == 3 and energy_rank(s, 1.0) == 4
    ps = [energy_rank(s, t) for t in np.linspace(0.05, 1.0, 40)]
    assert ps == sorted(ps)  # monotone in tau
    assert energy_rank(torch.zeros(4, dtype=torch.float64), 0.9) == 1  # no NaN


class _Site:
    """A stand-in LoRA site with a dense base weight."""

    def __init__(self, d_in, d_out, rank):
        self.a, self.b, self.prefix = "m.lora_A.default.weight", "m.lora_B.default.weight", "m"
        self.d_in, self.d_out, self.rank, self.scaling = d_in, d_out, rank, 1.0
        self.base = torch.zeros(d_out, d_in, dtype=torch.float64)

    def merge(self, delta):
        self.base += delta


def florist_round(tau, ranks=(8, 4, 4, 2)):
    bs, as_, p = factors(ranks)
    site = _Site(40, 48, max(ranks))
    agg = FLoRIST(FLoRISTParams(tau=tau))
    agg.sites, agg.full_rank, agg._head_numel = [site], max(ranks), 0
    r = max(ranks)
    ups = []
    for k, (b, a) in enumerate(zip(bs, as_, strict=True)):
        fa = torch.zeros(r, 40, dtype=torch.float64)
        fb = torch.zeros(48, r, dtype=torch.float64)
        fa[: a.shape[0]], fb[:, : b.shape[1]] = a, b
        ups.append(ClientUpdate(k, 1, {site.a: fa, site.b: fb}, 0.0, b.shape[1]))
    w = p.tolist()
    for u, wk in zip(ups, w, strict=True):  # sample_weights: n_k proportional to p_k
        u.num_samples = wk
    _, metrics = agg.aggregate({site.a: ups[0].state[site.a], site.b: ups[0].state[site.b]}, ups)
    return site.base, ideal(bs, as_, p), metrics, agg


def test_florist_tau_one_reproduces_the_stacked_product():
    merged, dense, m, agg = florist_round(1.0)
    assert torch.allclose(merged, dense, atol=1e-9)
    assert m["florist_rank"] == 18 and m["florist_dropped_energy"] == pytest.approx(0, abs=1e-12)
    assert agg.downlink_numels({}) == 18 * (40 + 48)


@pytest.mark.parametrize("tau", [0.5, 0.8, 0.95])
def test_florist_truncation_error_is_the_dropped_energy(tau):
    merged, dense, m, _ = florist_round(tau)
    s = torch.linalg.svdvals(dense)
    p = int(m["florist_rank"])
    assert p == energy_rank(s, tau)
    err = torch.linalg.norm(dense - merged) ** 2
    assert float(err) == pytest.approx(float((s[p:] ** 2).sum()), rel=1e-9)  # Eckart-Young
    assert m["florist_dropped_energy"] == pytest.approx(float(err / (s**2).sum()), rel=1e-9)
    assert m["florist_dropped_energy"] <= 1 - tau + 1e-12


def test_lora_rank_helpers():
    g = torch.Generator().manual_seed(0)
    st = {"x.lora_A.default.weight": torch.randn(4, 6), "x.lora_B.default.weight":
          torch.randn(5, 4), "head.weight": torch.randn(3, 6)}
    shapes = {n: tuple(t.shape) for n, t in st.items()}
    assert numels_at_rank(shapes, 2) == {"x.lora_A.default.weight": 12,
                                         "x.lora_B.default.weight": 10, "head.weight": 18}
    tr = truncate(st, 2)
    assert torch.all(tr["x.lora_A.default.weight"][2:] == 0)
    assert torch.equal(tr["x.lora_A.default.weight"][:2], st["x.lora_A.default.weight"][:2])
    fr = fresh_lora(st, 3, g)
    assert torch.all(fr["x.lora_B.default.weight"] == 0)
    assert torch.all(fr["x.lora_A.default.weight"][3:] == 0)
    assert torch.all(fr["x.lora_A.default.weight"][:3].abs() <= 1 / 6**0.5)
    assert torch.equal(fr["head.weight"], st["head.weight"])


def test_lora_site_merge_equals_the_peft_forward():
    base = build_base("tiny-bert", 3, 100, 8, "mean", seed=0)
    model = wrap_lora(base, 4, 8.0, 0.0, ["query", "value"], seed=1)
    g = torch.Generator().manual_seed(2)
    state = {n: torch.randn(t.shape, generator=g) * 0.1 for n, t in get_state(model).items()}
    set_state(model, state)
    model.eval()
    ids = torch.randint(1, 100, (3, 8), generator=g)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask)
        for site in lora_sites(model):
            site.merge(site.delta(state))
        zero = {n: (torch.zeros_like(t) if "lora_B" in n else t) for n, t in state.items()}
        set_state(model, zero)
        after = model(input_ids=ids, attention_mask=mask)
    assert torch.allclose(before, after, atol=1e-5)


# ---------------------------------------------------------------- whole runs


def run(tiny_raw, tmp_path, aggregator, **extra):
    raw = json.loads(json.dumps(tiny_raw))
    raw["method"] = {"aggregator": aggregator, **extra.pop("method", {})}
    for key, value in extra.items():
        raw.setdefault(key.split(".")[0], {})
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    raw["output"] = {"dir": str(tmp_path / aggregator), "plots": False}
    sc = parse_scenario(raw)
    c = build_components(sc)
    from wirelessfl.observers import ResultsObserver
    from wirelessfl.results import ResultsWriter

    summary = play(c, [ResultsObserver(ResultsWriter(sc.output_dir))])
    return c.bench, sc.output_dir, summary


@pytest.mark.parametrize("name", ["fedit", "ffa", "flora", "florist"])
def test_every_method_runs_by_name(tiny_raw, tmp_path, name):
    _, path, summary = run(tiny_raw, tmp_path, name)
    assert 0 <= summary["final_accuracy"] <= 1
    assert len(read_csv(path / "metrics.csv")) == 3


def test_ffa_never_changes_a_and_sends_half_the_lora_values(tiny_raw, tmp_path):
    sim, path, _ = run(tiny_raw, tmp_path, "ffa")
    params = dict(sim.model.named_parameters())
    init = sim.initial_state
    assert not any("lora_A" in n for n in init)  # A is not trainable, not sent
    for site in sim.sites:
        assert not params[site.a].requires_grad
    a0 = {s.a: params[s.a].detach().clone() for s in sim.sites}
    sim2, _, _ = run(tiny_raw, tmp_path / "again", "ffa")
    for s in sim2.sites:  # the frozen A is the shared seeded init, untouched by training
        assert torch.equal(dict(sim2.model.named_parameters())[s.a].detach(), a0[s.a])
    bits_ffa = int(read_csv(path / "clients.csv")[0]["payload_bits"])
    head = 64 * 3 + 3
    lora_values = sum(s.d_out * s.rank for s in sim.sites)  # B only
    assert bits_ffa == 32 * (lora_values + head)


def test_flora_merges_exactly_and_exports_an_equivalent_adapter(tiny_raw, tmp_path):
    sim, path, _ = run(tiny_raw, tmp_path, "flora")
    rows = read_csv(path / "metrics.csv")
    r, k = 2, 3
    lora_per_rank = sum(s.d_in + s.d_out for s in sim.sites)
    head = 64 * 3 + 3
    assert int(rows[0]["downlink_bits"]) == 32 * head  # round 0: the head only
    assert int(rows[1]["downlink_bits"]) == 32 * (head + k * r * lora_per_rank)  # stacked
    # the exported adapter over a pristine base reproduces the merged global model
    ids = sim.data.input_ids[:5]
    mask = sim.data.attention_mask[:5]
    sim.model.eval()
    with torch.no_grad():
        want = sim.model(input_ids=ids, attention_mask=mask)
        loaded = load_global_model(path).eval()
        got = loaded(input_ids=ids, attention_mask=mask)
    assert torch.allclose(want, got, atol=1e-4)


def test_heterogeneous_ranks_aggregate_and_pay_their_own_bits(tiny_raw, tmp_path):
    for name in ("fedit", "flora", "florist", "ffa"):
        sim, path, _ = run(tiny_raw, tmp_path / name, name, **{"model.lora.client_ranks":
                                                                [1, 2, 4]})
        clients = read_csv(path / "clients.csv")
        bits = {int(c["client"]): int(c["payload_bits"]) for c in clients if c["round"] == "0"}
        per_rank = sum((0 if name == "ffa" else s.d_in) + s.d_out for s in sim.sites)
        assert bits[1] - bits[0] == 32 * per_rank and bits[2] - bits[1] == 32 * 2 * per_rank
    # a rank-1 client's unused ranks stay exactly zero under fedit's zero padding
    sim, _, _ = run(tiny_raw, tmp_path / "z", "fedit", **{"model.lora.client_ranks": [1, 1, 1]})
    assert sim.alloc_rank == 1


def test_rank_by_device(tiny_raw, tmp_path):
    tiny_raw["clients"]["device"] = ["phone", "jetson"]
    tiny_raw["model"]["lora"]["rank_by_device"] = {"phone": 2, "jetson": 4}
    sim, path, _ = run(tiny_raw, tmp_path, "flora")
    assert sim.ranks.tolist() == [2, 4, 2]
    c = {int(r["client"]): r for r in read_csv(path / "clients.csv") if r["round"] == "0"}
    assert float(c[0]["compute_s"]) == pytest.approx(10 * float(c[1]["compute_s"]))


def test_partial_participation_selects_the_fraction(tiny_raw, tmp_path):
    tiny_raw["clients"]["count"] = 6
    tiny_raw["clients"]["fraction"] = 0.5
    for name in ("fedit", "flora"):
        _, path, _ = run(tiny_raw, tmp_path / name, name)
        rows = read_csv(path / "metrics.csv")
        assert all(int(r["selected"]) == 3 for r in rows)
        chosen = [sorted(int(c["client"]) for c in read_csv(path / "clients.csv")
                         if c["round"] == str(t)) for t in range(3)]
        assert len({tuple(c) for c in chosen}) > 1  # different clients across rounds


def test_head_is_averaged_with_sample_weights_in_every_method(tiny_raw, tmp_path):
    from wirelessfl.learning.aggregators import AGGREGATORS

    g = torch.Generator().manual_seed(0)
    head = {"classifier.modules_to_save.default.weight": (3, 4)}
    for name in ("fedit", "ffa", "flora", "florist"):
        agg = AGGREGATORS.get(name)()
        state = {n: torch.zeros(s) for n, s in head.items()}
        agg.setup([], state)
        ups = [ClientUpdate(k, n, {nm: torch.randn(s, generator=g) for nm, s in head.items()},
                            0.0, 1) for k, n in enumerate([1, 3])]
        new, _ = agg.aggregate(state, ups)
        for nm in head:
            assert torch.allclose(new[nm], 0.25 * ups[0].state[nm] + 0.75 * ups[1].state[nm])


def test_run_scenario_accepts_each_method(tiny_raw, tmp_path):
    tiny_raw["method"] = {"aggregator": "florist", "aggregator_options": {"tau": 0.5}}
    tiny_raw["output"] = {"dir": str(tmp_path / "f"), "plots": False}
    path, _ = run_scenario(parse_scenario(tiny_raw), progress=False)
    rows = read_csv(path / "metrics.csv")
    assert "florist_rank" in rows[0] and float(rows[0]["florist_rank"]) >= 1
