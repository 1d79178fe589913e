"""A lazily held population (``clients.population: lazy``): state per client, on demand.

References: the old list-building partitions written out again here; uniformity and
independence of the keyed draws by KS and correlation; a client's numbers compared
across population sizes (they must not depend on who else exists); a resumed run
against an uninterrupted one.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy import stats

import wirelessfl
from tests.conftest import TINY
from wirelessfl import seeding
from wirelessfl.learning.partition import RangeShards, dirichlet_partition, iid_partition


def raw(**over):
    r = copy.deepcopy(TINY)
    r["rounds"] = 2
    r["clients"]["population"] = "lazy"
    for k, v in over.items():
        r[k] = v
    return r


# ------------------------------------------------------------------ keyed draws

def test_keyed_draws_are_uniform_independent_and_per_key():
    keys = np.arange(200_000)
    u0 = seeding.keyed_uniforms(7, "placement", keys, 0)
    u1 = seeding.keyed_uniforms(7, "placement", keys, 1)
    assert 0 < u0.min() and u0.max() < 1
    assert stats.kstest(u0, "uniform").pvalue > 1e-3
    assert stats.kstest(u1, "uniform").pvalue > 1e-3
    for a, b in ((u0, u1), (u0[:-1], u0[1:]),
                 (u0, seeding.keyed_uniforms(8, "placement", keys, 0)),
                 (u0, seeding.keyed_uniforms(7, "shadowing", keys, 0))):
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.01
    # a key's draw is its own: any subset, in any order, gives the same numbers
    sub = np.array([199_999, 3, 77_777, 3])
    np.testing.assert_array_equal(seeding.keyed_uniforms(7, "placement", sub, 0), u0[sub])
    draws = seeding.KeyedDraws(7, "placement", sub)
    np.testing.assert_array_equal(draws.random(4), u0[sub])
    np.testing.assert_array_equal(draws.random(4), u1[sub])
    with pytest.raises(ValueError, match="one value per client"):
        draws.standard_normal((4, 2))


def test_keyed_normals_and_exponentials_have_their_laws():
    d = seeding.KeyedDraws(1, "csi", np.arange(100_000))
    assert stats.kstest(d.standard_normal(100_000), "norm").pvalue > 1e-3
    assert stats.kstest(d.standard_exponential(100_000), "expon").pvalue > 1e-3
    ints = d.integers(0, 5, 100_000)
    assert set(np.unique(ints)) == {0, 1, 2, 3, 4}


# ------------------------------------------------------------------ shards as ranges

def old_iid(indices, k, rng):
    """The list-building deal, as it was written before the ranges."""
    perm = rng.permutation(indices)
    return [np.sort(s) for s in np.array_split(perm, k)]


def old_dirichlet(indices, labels, k, alpha, rng):
    y = labels[indices]
    shards = [[] for _ in range(k)]
    for c in np.unique(y):
        idx = rng.permutation(indices[y == c])
        p = rng.dirichlet(np.full(k, alpha))
        cuts = (np.cumsum(p)[:-1] * len(idx)).astype(int)
        for j, part in enumerate(np.split(idx, cuts)):
            shards[j].append(part)
    return [np.sort(np.concatenate(s)) for s in shards]


@pytest.mark.parametrize("k", [1, 7, 100, 1000])
def test_range_shards_equal_the_lists_they_replace(k):
    idx = np.sort(np.random.default_rng(0).choice(5000, 3000, replace=False))
    labels = np.random.default_rng(1).integers(0, 4, 5000)
    new = iid_partition(idx, k, np.random.default_rng(2))
    old = old_iid(idx, k, np.random.default_rng(2))
    assert isinstance(new, RangeShards) and len(new) == k
    for a, b in zip(new, old, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(new.sizes(), [len(s) for s in old])
    new = dirichlet_partition(idx, labels, k, 0.5, np.random.default_rng(3), min_samples=0)
    old = old_dirichlet(idx, labels, k, 0.5, np.random.default_rng(3))
    for a, b in zip(new, old, strict=True):
        np.testing.assert_array_equal(a, b)
    assert new[-1].tolist() == old[-1].tolist() and len(new[1:3]) == min(2, k - 1)


# ------------------------------------------------------------------ runs

def test_a_clients_numbers_do_not_depend_on_the_population():
    """Round robin's first window is clients 0-4 in both populations: their distances,
    gains, bandwidths and realised upload times are the same with 50 or 5,000 clients
    (the data shards differ, the wireless numbers must not)."""
    rows = []
    for k in (50, 5000):
        r = raw()
        r["clients"].update(count=k, fraction=5 / k, selection="round_robin")
        r["data"]["synthetic"]["num_samples"] = 3 * k
        r["data"]["partition"] = {"scheme": "iid"}
        r["rounds"] = 1
        rows.append(wirelessfl.run(r, output=None).clients)
    a, b = rows
    assert a["client"].tolist() == b["client"].tolist() == [0, 1, 2, 3, 4]
    for col in ("distance_m", "gain_db", "bandwidth_hz", "realised_upload_s"):
        np.testing.assert_array_equal(a[col], b[col])


def test_lazy_runs_are_reproducible_and_differ_from_eager_only_in_their_draws():
    r = raw()
    a = wirelessfl.run(r, output=None)
    b = wirelessfl.run(r, output=None)
    assert a.metrics.equals(b.metrics) and a.clients.equals(b.clients)
    eager = wirelessfl.run(r, output=None, clients__population="eager")
    assert list(eager.metrics.columns) == list(a.metrics.columns)
    assert not np.allclose(eager.clients["gain_db"], a.clients["gain_db"])


def test_mobile_clients_walk_their_own_waypoints():
    r = raw()
    r["clients"].update(count=3, fraction=1.0, selection="all",
                        mobility={"model": "random_waypoint", "speed_mps": 50.0})
    r["rounds"] = 3
    c = wirelessfl.run(r, output=None).clients
    d = c.pivot(index="round", columns="client", values="distance_m")
    assert np.all(np.abs(np.diff(d.to_numpy(), axis=0)) > 0)  # everyone moved


@pytest.mark.parametrize("fading", [
    {"model": "rayleigh"}, {"model": "rician", "k_factor_db": 5}, {"model": "nakagami"},
    {"model": "awgn"}, {"model": "jakes", "max_doppler_hz": 20.0},
    {"model": "tdl", "max_doppler_hz": 20.0, "subcarriers": 16, "subbands": 4},
    {"model": "cdl", "max_doppler_hz": 20.0, "subcarriers": 16, "subbands": 4},
])
def test_every_per_link_fading_model_runs_lazily(fading):
    r = raw()
    r["channel"] = {"fading": fading, "pathloss": {"model": "uma"},
                    "csi": {"error_std_db": 1.0}}
    run = wirelessfl.run(r, output=None)
    assert np.all(np.isfinite(run.metrics["round_latency_s"]))


@pytest.mark.parametrize("controller", ["equal", "minmax", "greedy", "tsfa", "tsfa_sched",
                                        "ideal", "fixed"])
def test_every_controller_runs_lazily(controller):
    r = raw()
    r["method"] = {"aggregator": "fedit", "compressor": "soft", "controller": controller}
    r["controller"] = {"latency_budget_s": 0.05}
    r["radio"]["resource_block_hz"] = 180e3
    run = wirelessfl.run(r, output=None)
    assert np.all(np.isfinite(run.metrics["round_latency_s"]))


@pytest.mark.parametrize(("key", "over"), [
    ("clients.selection", {"clients": {"selection": "channel_aware", "fraction": 0.5}}),
    ("method.aggregator", {"method": {"aggregator": "fedtree"}}),
    ("clients.population", {"clients": {"population": "eager", "count": 100_001}}),
    ("clients.count", {"clients": {"count": 200_000, "fraction": 0.001},
                       "data": {"partition": {"scheme": "iid"}}}),
])
def test_what_a_lazy_population_cannot_do_is_one_line(tmp_path, capsys, key, over):
    import yaml

    from wirelessfl.cli import main

    r = raw()
    for section, values in over.items():
        r.setdefault(section, {}).update(values)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(r))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {key}: ") and err.count("\n") == 1, err


def test_a_trace_cannot_be_drawn_per_client(tmp_path, capsys):
    import yaml

    from wirelessfl.cli import main

    trace = tmp_path / "t.csv"
    trace.write_text("time_s,link,gain_db\n" + "".join(
        f"{t * 0.01},{k},{-k}\n" for t in range(3) for k in range(4)))
    r = raw()
    r["channel"] = {"fading": {"model": "trace", "path": str(trace)}}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(r))
    assert main(["validate", str(p)]) == 2
    assert capsys.readouterr().err.startswith("error: channel.fading.model: ")


def test_auto_is_lazy_above_100k_clients():
    from wirelessfl.scenario import parse_scenario

    base = copy.deepcopy(TINY)
    for count, lazy in ((100_000, False), (100_001, True)):
        base["clients"]["count"] = count
        assert parse_scenario(base).lazy_population is lazy


def test_a_lazy_run_killed_then_resumed_is_byte_identical(tmp_path):
    """kill -9 after round 2 of a lazy run with TSFA's offline stage and queues,
    Jakes fading, mobility, CSI error and partial participation, then --resume: the
    tables of an uninterrupted run, byte for byte."""
    import filecmp
    import subprocess

    import yaml

    from tests.test_resume import ENV, HARD, TABLES, cli, kill_at

    hard = copy.deepcopy(HARD)
    hard["rounds"] = 6
    hard["clients"]["population"] = "lazy"
    hard["method"]["aggregator"] = "fedit"
    scenario = tmp_path / "lazy.yaml"
    scenario.write_text(yaml.safe_dump(hard))
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run(cli("run", str(scenario), "-q", "--out", str(ref)), env=ENV, check=True)
    kill_at(cli("run", str(scenario), "-q", "--out", str(run)), run, 2)
    assert not (run / "summary.json").exists(), "the run finished before the kill"
    subprocess.run(cli("run", str(scenario), "-q", "--out", str(run), "--resume"), env=ENV,
                   check=True)
    for f in (*TABLES, "tsfa_offline.csv"):
        assert filecmp.cmp(ref / f, run / f, shallow=False), f"{f} differs"


def test_the_allocation_heatmap_shows_the_selected_clients_only(tmp_path, monkeypatch):
    """A large population's heatmap has a row per selected client (not one per
    client of the population), at most MAX_CLIENT_ROWS of them, labelled by index."""
    import pandas as pd

    from wirelessfl import plotting
    from wirelessfl.analysis import load_run

    r = raw()
    r["clients"].update(count=5000, fraction=0.002)
    r["data"]["synthetic"]["num_samples"] = 15_000
    r["data"]["partition"] = {"scheme": "iid"}
    r["rounds"] = 3
    r["output"] = {"dir": str(tmp_path / "run"), "plots": True, "save_adapter": False}
    wirelessfl.run(r)
    run = load_run(tmp_path / "run")
    clients = pd.read_csv(tmp_path / "run" / "clients.csv")
    m, ids, total = plotting._client_matrix(run, "bandwidth_hz")
    chosen = sorted(set(clients["client"]))
    assert ids.tolist() == chosen and total == len(chosen) and m.shape == (len(chosen), 3)
    assert np.isfinite(m).sum() == len(clients) and max(chosen) > 100
    monkeypatch.setattr(plotting, "MAX_CLIENT_ROWS", 10)
    m, ids, total = plotting._client_matrix(run, "bandwidth_hz")
    assert m.shape == (10, 3) and total == len(chosen) and set(ids) <= set(chosen)
    assert (tmp_path / "run" / "plots" / "allocation.png").is_file()


def test_keyed_blocks_are_a_function_of_time_at_any_age():
    """A one-link block channel keyed per chunk of blocks: rebuilt at any time it gives
    every block the same gain, far times cost one chunk (not every block since 0),
    and the gains keep their law."""
    from channels.base import CHANNELS

    def link(k):
        ch = CHANNELS.get("rayleigh").from_dict({"coherence_time_s": 0.001})
        ch.reset(1, np.random.default_rng(0))
        ch.key_blocks(lambda c: seeding.rng(5, "channel", k, c))
        return ch

    times = np.array([1e4, 0.0005, 1e4 + 0.0031, 3.0, 1e4])  # block 1e7 and others
    a = link(7).gains(times)
    np.testing.assert_array_equal(a[0, [0, 4]], a[0, 0])
    b = link(7).gains(times[::-1])[:, ::-1]
    np.testing.assert_array_equal(a, b)
    ch = link(7)
    ch.gains(np.array([1e4]))
    assert len(ch._chunks) == 1  # one chunk of 1,024 blocks drawn, not 10 million
    ch.forget_before(2e4)
    assert not ch._chunks
    assert not np.array_equal(link(8).gains(times), a)  # another client, other gains
    g = link(3).gains(np.arange(20_000) * 0.001)[0]
    assert stats.kstest(g, "expon").pvalue > 1e-3
