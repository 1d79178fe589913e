"""Whole runs of a tiny scenario: results files, reproducibility, output safety."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from peft import PeftModel

from wirelessfl.cli import main
from wirelessfl.learning.models import build_base
from wirelessfl.results import read_csv
from wirelessfl.scenario import parse_scenario
from wirelessfl.session import run_scenario


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from tests.conftest import TINY

    raw = json.loads(json.dumps(TINY))
    raw["output"] = {"dir": str(tmp_path_factory.mktemp("run") / "tiny"), "plots": True}
    path, summary = run_scenario(parse_scenario(raw), progress=False)
    return path, summary, raw


def test_run_writes_every_results_file(tiny_run):
    path, summary, _ = tiny_run
    for name in ("config.yaml", "metrics.csv", "clients.csv", "events.jsonl", "summary.json",
                 "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
                 "plots/accuracy_vs_latency.png", "plots/accuracy_vs_latency.pdf",
                 "plots/accuracy_vs_uplink_bits.png"):
        assert (path / name).is_file(), name
    rows = read_csv(path / "metrics.csv")
    assert len(rows) == 3
    for col in ("round", "sim_time_s", "round_latency_s", "uplink_bits", "accuracy", "loss"):
        assert col in rows[0]
    assert len(read_csv(path / "clients.csv")) == 3 * 3
    s = json.loads((path / "summary.json").read_text())
    assert s["seed"] == 3 and 0.0 <= s["final_accuracy"] <= 1.0
    assert "torch" in s["versions"]
    assert yaml.safe_load((path / "config.yaml").read_text())["clients"]["count"] == 3


def test_simulated_time_increases_every_round(tiny_run):
    rows = read_csv(tiny_run[0] / "metrics.csv")
    times = [float(r["sim_time_s"]) for r in rows]
    lat = [float(r["round_latency_s"]) for r in rows]
    assert all(b > a for a, b in zip([0.0] + times, times, strict=False))
    assert times[-1] == pytest.approx(sum(lat))


def test_uplink_bits_are_the_payloads_received(tiny_run):
    path = tiny_run[0]
    clients = read_csv(path / "clients.csv")
    for row in read_csv(path / "metrics.csv"):
        got = sum(int(c["payload_bits"]) for c in clients
                  if c["round"] == row["round"] and c["received"] == "True")
        assert int(row["uplink_bits"]) == got


def test_same_seed_gives_identical_metrics(tiny_run, tmp_path):
    path, _, raw = tiny_run
    raw = json.loads(json.dumps(raw))
    raw["output"] = {"dir": str(tmp_path / "again"), "plots": False}
    again, _ = run_scenario(parse_scenario(raw), progress=False)
    assert (again / "metrics.csv").read_text() == (path / "metrics.csv").read_text()
    assert (again / "clients.csv").read_text() == (path / "clients.csv").read_text()
    raw["seed"] = 4
    raw["output"]["dir"] = str(tmp_path / "other")
    other, _ = run_scenario(parse_scenario(raw), progress=False)
    assert (other / "metrics.csv").read_text() != (path / "metrics.csv").read_text()


def test_saved_adapter_loads_with_peft_and_reproduces_the_final_accuracy(tiny_run):
    path, summary, raw = tiny_run
    json_summary = json.loads((path / "summary.json").read_text())
    base = build_base(**json_summary["base_model"])
    model = PeftModel.from_pretrained(base, str(path / "adapter")).eval()
    # evaluate on the run's own test split: the same accuracy as logged
    from wirelessfl.build import load_data
    from wirelessfl.learning.partition import split_shards

    sc = parse_scenario(raw)
    data = load_data(sc)
    test = torch.as_tensor(split_shards(sc, data).test)
    with torch.no_grad():
        pred = model(input_ids=data.input_ids[test],
                     attention_mask=data.attention_mask[test]).argmax(-1)
    acc = float((pred == data.labels[test]).double().mean())
    assert acc == pytest.approx(summary["final_accuracy"], abs=1e-9)


def test_existing_results_are_not_overwritten_without_flag(tiny_run, tmp_path, capsys):
    path, _, raw = tiny_run
    before = (path / "metrics.csv").read_text()
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(raw))
    code = main(["run", str(scen), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: output.dir: ") and "--overwrite" in err
    assert (path / "metrics.csv").read_text() == before


def test_plot_command_overlays_runs(tiny_run, tmp_path, capsys):
    path = tiny_run[0]
    code = main(["plot", str(path), str(path), "--out", str(tmp_path / "figs")])
    assert code == 0
    assert (tmp_path / "figs" / "accuracy_vs_latency.pdf").is_file()
    assert (tmp_path / "figs" / "accuracy_vs_uplink_bits.png").is_file()
    assert main(["plot", str(tmp_path)]) == 2


def test_validate_prints_payload_and_expected_latency(tmp_path, capsys):
    from tests.conftest import TINY

    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(TINY))
    assert main(["validate", str(scen)]) == 0
    out = capsys.readouterr().out
    # 2 layers x 2 modules x r=2 x (64 + 64) + head 64 * 3 + 3 = 1219 values x 32 bits
    assert "uplink_bits_per_client_full_rank  39008" in out
    assert "expected_round_latency_s" in out


def test_overwrite_removes_the_tables_a_method_added(tiny_raw, tmp_path):
    """A TSFA run's offline table is listed in the folder's manifest, so a later run
    with another controller and --overwrite leaves no stale table behind."""
    import wirelessfl

    out = tmp_path / "run"
    tsfa = {"aggregator": "fedit", "compressor": "soft", "controller": "tsfa",
            "controller_options": {"rank_candidates": [1, 2], "pilot_latency_rounds": 2}}
    tiny_raw["controller"] = {"latency_budget_s": 0.05}
    first = wirelessfl.run(tiny_raw, output=out, rounds=1, method=tsfa)
    assert "tsfa_offline" in first.tables and (out / "tsfa_offline.csv").is_file()
    with pytest.raises(wirelessfl.errors.OutputError, match="already holds a run"):
        wirelessfl.run(tiny_raw, output=out, rounds=1)
    again = wirelessfl.run(tiny_raw, output=out, rounds=1, overwrite=True)
    assert not (out / "tsfa_offline.csv").exists() and again.tables == {}
    user_file = out / "notes.csv"  # not ours: never deleted
    user_file.write_text("a,b\n")
    wirelessfl.run(tiny_raw, output=out, rounds=1, overwrite=True)
    assert user_file.read_text() == "a,b\n"
