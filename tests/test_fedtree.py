"""FedTreeLoRA: silhouette, per-layer cuts, and FedIT equality with one cluster."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wirelessfl.learning.aggregators.fedit import FedIT
from wirelessfl.learning.aggregators.fedtree import (
    FedTreeLoRA,
    FedTreeParams,
    layer_cuts,
    layer_groups,
    silhouette,
)
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.results import read_csv


def test_silhouette_by_hand():
    # points on a line: 0, 1 | 10, 12
    x = np.array([0.0, 1.0, 10.0, 12.0])
    d = np.abs(x[:, None] - x[None, :])
    labels = np.array([1, 1, 2, 2])
    # s0 = (b - a)/b with a = 1, b = (10 + 12)/2 = 11 -> 10/11; s1: a = 1, b = (9 + 11)/2 = 10
    # s2: a = 2, b = (10 + 9)/2 = 9.5; s3: a = 2, b = (12 + 11)/2 = 11.5
    expect = np.mean([10 / 11, 9 / 10, 7.5 / 9.5, 9.5 / 11.5])
    assert silhouette(d, labels) == pytest.approx(expect)
    assert silhouette(d, np.array([1, 1, 1, 1])) == 0.0


class Site:
    def __init__(self, layer, kind, d=6, r=2):
        self.prefix = f"enc.layer.{layer}.attention.self.{kind}"
        self.a = self.prefix + ".lora_A.default.weight"
        self.b = self.prefix + ".lora_B.default.weight"
        self.d_in = self.d_out = d
        self.rank = r


SITES = [Site(0, "query"), Site(0, "value"), Site(1, "query"), Site(1, "value")]


def updates(shallow_spread=0.01, deep_gap=5.0, n=6, seed=0):
    """Two groups of clients: alike in layer 0, far apart in layer 1."""
    g = torch.Generator().manual_seed(seed)
    base = {s.b: torch.randn(6, 2, generator=g) for s in SITES}
    base.update({s.a: torch.randn(2, 6, generator=g) for s in SITES})
    ups = []
    for k in range(n):
        st = {}
        for s in SITES:
            for name in (s.a, s.b):
                t = base[name] + shallow_spread * torch.randn(base[name].shape, generator=g)
                if name.startswith("enc.layer.1") and k >= n // 2:
                    t = t + deep_gap
                st[name] = t
        st["head.weight"] = torch.randn(3, 6, generator=g)
        ups.append(ClientUpdate(k, 10 + k, st, 0.0, 2))
    return ups


def make(**kw):
    agg = FedTreeLoRA(FedTreeParams(warmup_rounds=1, **kw))
    state = {n: torch.zeros_like(t) for n, t in updates()[0].state.items()}
    agg.setup(SITES, state)
    return agg, state


def test_layers_are_grouped_shallow_to_deep():
    groups = layer_groups(list(reversed(SITES)))
    assert [[s.prefix for s in g] for g in groups][0][0].startswith("enc.layer.0")


def test_cuts_are_a_trunk_then_branches():
    agg, state = make(silhouette_threshold=0.1)
    agg.aggregate(state, updates())
    assert agg.cuts == [1, 2]  # layer 0 shared, layer 1 split into the two groups
    labels = agg.labels[1]
    assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]


def test_cuts_never_get_coarser_and_stay_in_the_window():
    rng = np.random.default_rng(0)
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import pdist, squareform

    pts = rng.normal(size=(9, 3))
    dists = [squareform(pdist(pts + rng.normal(scale=s, size=pts.shape)))
             for s in (0.0, 0.5, 1.0, 2.0)]
    tree = linkage(squareform(sum(dists) / 4, checks=False), "average")
    cuts = layer_cuts(dists, tree, threshold=-1.0, window=3)
    assert cuts == sorted(cuts)
    assert all(b - a <= 2 for a, b in zip([1] + cuts, cuts, strict=False))


def test_one_cluster_everywhere_equals_fedit():
    agg, state = make(silhouette_threshold=1.0)  # phi(1) = 1 beats every silhouette
    ups = updates()
    glob, _ = agg.aggregate(state, ups)
    ref, _ = FedIT().aggregate(state, ups)
    assert agg.cuts == [1, 1]
    for n in state:
        assert torch.allclose(glob[n], ref[n])
        for k in range(len(ups)):
            assert torch.allclose(agg.personal_state(k)[n], ref[n])


def test_identical_clients_share_everything():
    agg, state = make(silhouette_threshold=0.1)
    ups = updates(shallow_spread=0.0, deep_gap=0.0)
    agg.aggregate(state, ups)
    assert agg.cuts == [1, 1]


def test_personal_adapters_mix_cluster_and_external_means():
    agg, state = make(silhouette_threshold=0.1, mix=0.75)
    ups = updates()
    agg.aggregate(state, ups)
    n = SITES[2].b  # a deep (split) layer
    w = torch.tensor([u.num_samples for u in ups], dtype=torch.float64)

    def mean(idx):
        ww = w[idx] / w[idx].sum()
        return sum(float(ww[i]) * ups[j].state[n].double() for i, j in enumerate(idx))

    expect = 0.75 * mean([0, 1, 2]) + 0.25 * mean([3, 4, 5])
    assert torch.allclose(agg.personal_state(0)[n].double(), expect, atol=1e-6)
    shallow = SITES[0].b
    ref, _ = FedIT().aggregate(state, ups)
    assert torch.allclose(agg.personal_state(0)[shallow], ref[shallow], atol=1e-6)


def test_fedtree_run_logs_personal_accuracy(tiny_raw, tmp_path):
    from tests.test_aggregators import run

    tiny_raw["clients"]["count"] = 4
    _, path, _ = run(tiny_raw, tmp_path, "fedtree",
                     method={"aggregator_options": {"warmup_rounds": 1}})
    rows = read_csv(path / "metrics.csv")
    assert all(0 <= float(r["personal_accuracy"]) <= 1 for r in rows)
    assert "fedtree_clusters_mean" in rows[0]
