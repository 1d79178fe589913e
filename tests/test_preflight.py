"""``wirelessfl validate`` from the learning facts: the same lines as a full build, no
torch, a key that moves with everything the facts depend on and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from wirelessfl import build, facts, preflight
from wirelessfl.cli import main
from wirelessfl.scenario import load_scenario, parse_scenario
from wirelessfl.sizes import RoundSizes

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("WIRELESSFL_CACHE", str(folder))
    return folder / "facts"


def _validate(capsys, *args: str) -> str:
    assert main(["validate", *args]) == 0
    return capsys.readouterr().out


def _no_build(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a full build ran: the stored facts were not used")
    monkeypatch.setattr(build, "build_run", refuse)


def _smoke_raw() -> dict:
    return yaml.safe_load(SMOKE.read_text())


@pytest.mark.parametrize("overrides", [
    [],
    # TSFA with its offline check, partial participation, a correlated channel
    ["method.controller=tsfa", "controller.latency_budget_s=0.5",
     "method.controller_options={rank_candidates: [2, 4]}", "clients.fraction=0.5",
     "clients.selection=random", "channel.fading={model: jakes, max_doppler_hz: 50}"],
    # heterogeneous ranks, SOFT, a lazy population
    ["model.lora.client_ranks=[2, 4, 4, 2]", "method.compressor=soft",
     "clients.population=lazy"],
])
def test_the_stored_facts_give_the_full_builds_lines(cache, capsys, monkeypatch, overrides):
    args = [str(SMOKE), *(a for o in overrides for a in ("--set", o))]
    cold = _validate(capsys, *args)
    assert len(list(cache.glob("*.json"))) == 1
    _no_build(monkeypatch)
    warm = _validate(capsys, *args)
    assert warm == cold


def test_radio_side_changes_reuse_the_facts_and_are_computed_again(cache, capsys,
                                                                   monkeypatch):
    overrides = ("radio.tx_power_dbm=10", "channel.fading={model: jakes, max_doppler_hz: 5}",
                 "clients.placement={model: disk, radius_m: 400}", "rounds=3",
                 "controller.latency_budget_s=0.01", "clients.fraction=0.5",
                 "sim.expected_latency_rounds=7")
    monkeypatch.setenv("WIRELESSFL_CACHE", "off")
    full = {o: _validate(capsys, str(SMOKE), "--set", o) for o in overrides}  # full builds
    monkeypatch.setenv("WIRELESSFL_CACHE", str(cache.parent))
    _validate(capsys, str(SMOKE))
    _no_build(monkeypatch)
    for o, want in full.items():
        assert _validate(capsys, str(SMOKE), "--set", o) == want, o
    assert len(list(cache.glob("*.json"))) == 1  # one learning side, one entry


def test_learning_side_changes_build_again(cache, capsys):
    _validate(capsys, str(SMOKE))
    for o in ("model.lora.rank=2", "radio.bits_per_value=16", "clients.count=6",
              "data.synthetic={num_samples: 500, num_classes: 4}", "seed=1",
              "method.compressor=topk"):
        _validate(capsys, str(SMOKE), "--set", o)
    assert len(list(cache.glob("*.json"))) == 7


def test_a_radio_side_error_on_stored_facts_is_the_full_builds_line(cache, capsys,
                                                                    monkeypatch):
    _validate(capsys, str(SMOKE))
    bad = [("channel.fading={model: nope}", "channel.fading.model"),
           ("method.controller=tsfa", "controller.latency_budget_s"),
           ("clients.selection=nope", "clients.selection"),
           ("output.loggers=[nope]", "output.loggers")]
    lines = {}
    for o, key in bad:
        assert main(["validate", str(SMOKE), "--set", o]) == 2
        lines[o] = capsys.readouterr().err
        assert key in lines[o]
    _no_build(monkeypatch)
    for o, _ in bad:
        if o.startswith("method."):
            continue  # a learning-side key: another entry, a full build
        assert main(["validate", str(SMOKE), "--set", o]) == 2
        assert capsys.readouterr().err == lines[o]


def test_warm_validate_imports_no_torch(cache, capsys):
    _validate(capsys, str(SMOKE))
    code = ("import sys; from wirelessfl.cli import main; "
            f"code = main(['validate', {str(SMOKE)!r}]); "
            "assert code == 0; "
            "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; "
            "assert not heavy, heavy")
    env = {**os.environ, "WIRELESSFL_CACHE": str(cache.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_a_changed_data_file_or_plugin_file_changes_the_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\na,0\nb,1\n")
    raw = _smoke_raw()
    raw["data"] = {"name": "csv", "options": {"path": str(csv)}}
    sc = parse_scenario(raw)
    key = facts.facts_key(sc)
    assert facts.facts_key(sc) == key
    csv.write_text("text,label\na,0\nb,1\nc,0\n")
    os.utime(csv, ns=(1, 1))
    assert facts.facts_key(sc) != key

    (tmp_path / "myagg.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    raw = _smoke_raw()
    raw["method"]["aggregator"] = "myagg:Agg"
    sc = parse_scenario(raw)
    key = facts.facts_key(sc)
    (tmp_path / "myagg.py").write_text("X = 22\n")
    assert facts.facts_key(sc) != key


def test_the_key_leaves_out_exactly_the_radio_side():
    sc = load_scenario(SMOKE)
    side = facts.learning_side(sc)
    assert set(side) == {"seed", "clients", "radio", "model", "data", "method", "eval",
                         "compute"}
    assert side["radio"] == {"bits_per_value": sc.radio.bits_per_value}
    assert not {"placement", "mobility", "selection", "selection_options",
                "fraction"} & set(side["clients"])


def test_a_bad_or_foreign_facts_file_is_rebuilt(cache, capsys):
    want = _validate(capsys, str(SMOKE))
    (path,) = cache.glob("*.json")
    for text in ("{", json.dumps({"format": 99}), json.dumps([1]),
                 json.dumps({"format": facts.FORMAT, "rows": {}})):
        path.write_text(text)
        assert _validate(capsys, str(SMOKE)) == want
        facts.LearningFacts.from_json(path.read_text())  # rewritten whole


def test_no_cache_no_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WIRELESSFL_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    _validate(capsys, str(SMOKE))
    assert not list(tmp_path.rglob("*.json"))


def test_a_run_stores_the_facts_validate_reads(cache, capsys, monkeypatch, tmp_path):
    raw = _smoke_raw()
    raw["rounds"] = 1
    raw["output"] = {"dir": str(tmp_path / "out")}
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(raw))
    assert main(["run", str(scen), "--quiet"]) == 0
    assert len(list(cache.glob("*.json"))) == 1
    _no_build(monkeypatch)
    _validate(capsys, str(scen))


def test_facts_round_trip_exactly():
    f = facts.LearningFacts(rows={2: [0.0, 1e6 / 3, 2e6 / 3], 4: [0.0, 0.1, 0.2]},
                            round_flops=3.475e8 / 7, broadcast_bits=1 / 3, sparsifies=True,
                            train_examples=479, test_examples=121, trainable_values=2308,
                            info={"tsfa_offline_rank": "not chosen"})
    assert facts.LearningFacts.from_json(f.to_json()) == f


def test_sizes_from_rows_equal_the_measured_sizes():
    from wirelessfl.network.compute import DEVICE_PROFILES

    class Comp:
        def payload_bits(self, shapes, r, q, m):
            return q * m * (3 * r + 7) + 11

    profiles = [DEVICE_PROFILES[n] for n in ("jetson", "phone", "jetson", "laptop_gpu")]
    ranks = [4, 2, 4, 8]
    s = RoundSizes.measure(Comp(), {}, ranks, 32, profiles, 1.5e9, 5)
    t = RoundSizes.from_rows(s.rows(), ranks, 32, profiles, s.round_flops)
    for name in ("ranks", "bits_table", "compute_s", "joules_per_flop"):
        np.testing.assert_array_equal(getattr(s, name), getattr(t, name))
    assert s.bits_table[1, 2] == 32 * 2 * 13 + 11  # rank 2 sending 2 of its ranks
    assert s.bits_table[1, 5] == s.bits_table[1, 2]  # above its rank: its full payload


def test_preflight_plan_builds_once_then_reads(cache, monkeypatch):
    sc = load_scenario(SMOKE)
    calls = []
    real = build.build_run
    monkeypatch.setattr(build, "build_run", lambda *a, **k: calls.append(1) or real(*a, **k))
    p1, _ = preflight.plan(sc)
    p2, _ = preflight.plan(sc)
    assert calls == [1]
    assert p1.train_examples == p2.train_examples == 479
    np.testing.assert_array_equal(p1.sizes.bits_table, p2.sizes.bits_table)


def test_the_cache_keeps_the_most_recently_used_entries(tmp_path):
    folder = tmp_path / "facts"
    folder.mkdir()
    for i in range(12):
        f = folder / f"{i:02d}.json"
        f.write_text("{}")
        os.utime(f, ns=(i * 10**9, i * 10**9))
    os.utime(folder / "00.json")  # read just now: kept
    facts.prune(folder, keep=8)
    left = sorted(p.name for p in folder.glob("*.json"))
    assert left == ["00.json", "07.json", "08.json", "09.json", "10.json", "11.json"]
    facts.prune(folder, keep=8)  # under the limit: nothing goes
    assert len(list(folder.glob("*.json"))) == 6
