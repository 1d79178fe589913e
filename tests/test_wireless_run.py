"""The wireless layer inside whole runs: switching by YAML, mobility, CSI, energy, plug-ins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from channels.jakes import JakesParams, JakesRayleigh
from wirelessfl.cli import main
from wirelessfl.network.link import shannon_rate_bps
from wirelessfl.network.placement import RandomWaypoint
from wirelessfl.results import read_csv
from wirelessfl.scenario import parse_scenario
from wirelessfl.session import run_scenario
from wirelessfl.sim import RoundSchedule, simulate_round

DOCS_EXAMPLES = Path(__file__).parent.parent / "docs" / "examples"


def one_round(raw, tmp_path, name):
    raw = json.loads(json.dumps(raw))
    raw["rounds"] = 2
    raw["output"] = {"dir": str(tmp_path / name), "plots": False, "save_adapter": False}
    path, _ = run_scenario(parse_scenario(raw), progress=False)
    return read_csv(path / "metrics.csv"), read_csv(path / "clients.csv")


@pytest.mark.parametrize(("fading", "pathloss"), [
    ({"model": "awgn"}, {"model": "free_space"}),
    ({"model": "rician", "k_factor_db": 6}, {"model": "umi_street_canyon"}),
    ({"model": "nakagami", "m": 3}, {"model": "uma", "los": "nlos"}),
    ({"model": "jakes", "speed_mps": 30}, {"model": "log_distance"}),
])
def test_channel_and_pathloss_switch_by_yaml_alone(tiny_raw, tmp_path, fading, pathloss):
    tiny_raw["channel"] = {"fading": fading, "pathloss": pathloss}
    metrics, clients = one_round(tiny_raw, tmp_path, fading["model"])
    assert len(metrics) == 2 and all(float(r["round_latency_s"]) > 0 for r in metrics)
    assert all(float(c["tx_energy_j"]) > 0 for c in clients)


def test_awgn_realised_upload_equals_planned(tiny_raw, tmp_path):
    tiny_raw["channel"] = {"fading": {"model": "awgn"}}
    _, clients = one_round(tiny_raw, tmp_path, "awgn")
    for c in clients:
        assert float(c["realised_upload_s"]) == pytest.approx(float(c["planned_upload_s"]))


def test_energy_is_power_times_airtime_plus_flops(tiny_raw, tmp_path):
    tiny_raw["radio"]["tx_power_dbm"] = 20.0  # 0.1 W
    metrics, clients = one_round(tiny_raw, tmp_path, "energy")
    for c in clients:
        assert float(c["tx_energy_j"]) == pytest.approx(0.1 * float(c["realised_upload_s"]))
    total = sum(float(c["tx_energy_j"]) for c in clients if c["round"] == "0")
    assert float(metrics[0]["tx_energy_j"]) == pytest.approx(total)
    assert float(clients[0]["compute_energy_j"]) > 0


def test_mobility_moves_clients_between_rounds(tiny_raw, tmp_path):
    tiny_raw["clients"]["mobility"] = {"model": "random_waypoint", "speed_mps": 200.0}
    tiny_raw["channel"] = {"fading": {"model": "awgn"}}
    tiny_raw["sim"] = {"deadline_s": 2.0}  # rounds of exactly 2 s: up to 400 m moved
    _, clients = one_round(tiny_raw, tmp_path, "mobile")
    d0 = {c["client"]: float(c["distance_m"]) for c in clients if c["round"] == "0"}
    d1 = {c["client"]: float(c["distance_m"]) for c in clients if c["round"] == "1"}
    assert any(abs(d0[k] - d1[k]) > 1.0 for k in d0)


def test_random_waypoint_speed_and_cell_bounds():
    rng = np.random.default_rng(0)
    start = np.array([[100.0, 0.0], [0.0, -200.0], [50.0, 50.0]])
    mob = RandomWaypoint(start, speed_mps=10.0, pause_s=0.0, radius_m=300.0,
                         min_distance_m=20.0, rng=rng)
    prev = start
    for t in np.arange(0.5, 200.0, 0.5):
        pos = mob.positions(float(t))
        step = np.linalg.norm(pos - prev, axis=1)
        assert np.all(step <= 10.0 * 0.5 + 1e-9)  # never faster than the speed
        assert np.all(np.linalg.norm(pos, axis=1) <= 300.0 + 1e-9)
        prev = pos
    with pytest.raises(ValueError):
        mob.positions(1.0)


def test_csi_delay_and_error_change_the_plan_not_the_channel(tiny_raw, tmp_path):
    base = one_round(tiny_raw, tmp_path, "perfect")[1]
    tiny_raw["channel"]["csi"] = {"error_std_db": 6.0, "delay_s": 0.5}
    noisy = one_round(tiny_raw, tmp_path, "noisy")[1]
    planned = [(float(a["planned_upload_s"]), float(b["planned_upload_s"]))
               for a, b in zip(base, noisy, strict=True) if a["round"] == "0"]
    assert any(abs(a - b) > 1e-6 for a, b in planned)
    # round 0 is played on the same true channel: same realised uploads
    for a, b in zip(base, noisy, strict=True):
        if a["round"] == "0":
            assert float(a["realised_upload_s"]) == pytest.approx(float(b["realised_upload_s"]))


def test_continuous_channel_upload_converges_with_resolution():
    def finish(res):
        ch = JakesRayleigh(JakesParams(max_doppler_hz=20.0, time_resolution_s=res))
        ch.reset(1, np.random.default_rng(5))
        r = shannon_rate_bps(1e6, 1e7)
        plan = RoundSchedule(0.0, np.array([0]), 0.0, np.zeros(1), np.array([0.3 * r]),
                         np.array([1e6]), np.array([1e7]))
        return simulate_round(plan, ch).finish_s[0]

    coarse, fine, finest = finish(2e-3), finish(2e-4), finish(2e-5)
    assert abs(fine - finest) < abs(coarse - finest) + 1e-9
    assert abs(fine - finest) / finest < 1e-3


def test_docs_plugin_example_runs_in_a_scenario(tiny_raw, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(DOCS_EXAMPLES))
    from gamma_fading import GammaFading, GammaParams

    ch = GammaFading(GammaParams(shape=3.0))
    ch.reset(400, np.random.default_rng(0))
    g = ch.gains((np.arange(250) + 0.5) * ch.coherence_time_s).ravel()
    assert stats.kstest(g, stats.gamma(a=3.0, scale=1 / 3.0).cdf).pvalue > 0.01
    tiny_raw["channel"] = {"fading": {"model": "gamma_fading:GammaFading", "shape": 3.0}}
    metrics, _ = one_round(tiny_raw, tmp_path, "plugin")
    assert len(metrics) == 2


def test_plugin_errors_name_the_key(tiny_raw, tmp_path, capsys, monkeypatch):
    import yaml

    monkeypatch.syspath_prepend(str(DOCS_EXAMPLES))
    for fading, key in [({"model": "gamma_fading:GammaFading", "shap": 1}, "channel.fading.shap"),
                        ({"model": "nosuchmodule:X"}, "channel.fading.model"),
                        ({"model": "trace", "path": str(tmp_path / "none.csv")},
                         "channel.fading")]:
        tiny_raw["channel"] = {"fading": fading}
        p = tmp_path / "s.yaml"
        p.write_text(yaml.safe_dump(tiny_raw))
        assert main(["validate", str(p)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {key}: ") and err.count("\n") == 1, err


def test_channels_command_lists_models_and_parameters(capsys):
    assert main(["channels"]) == 0
    out = capsys.readouterr().out
    for name in ("rayleigh", "rician", "nakagami", "jakes", "tdl", "cdl", "trace", "awgn", "uma",
                 "umi_street_canyon", "k_factor_db", "max_doppler_hz"):
        assert name in out


def test_soft_with_tsfa_runs_and_stays_reproducible(tiny_raw, tmp_path):
    tiny_raw["rounds"] = 3
    tiny_raw["method"] = {"aggregator": "fedit", "compressor": "soft", "controller": "tsfa",
                          "compressor_options": {"lambda_orth": 0.5},
                          "controller_options": {"v": 0.01}}
    tiny_raw["controller"] = {"latency_budget_s": 0.01}  # below the full-rank latency
    raw2 = json.loads(json.dumps(tiny_raw))
    metrics, clients = one_round(tiny_raw, tmp_path, "tsfa")
    assert {"trunc_err", "subset_oracle_err", "orth_residual", "queue_s"} <= set(metrics[0])
    assert all(float(c["subset_oracle_err"]) <= float(c["trunc_err"]) + 1e-9
               for c in clients)
    assert any(int(c["keep_ranks"]) < int(c["rank"]) for c in clients)
    again, _ = one_round(raw2, tmp_path, "tsfa2")
    assert again == metrics  # host timings stay out of metrics.csv


def test_tsfa_without_a_budget_is_a_one_line_error(tiny_raw, tmp_path, capsys):
    import yaml

    tiny_raw["method"] = {"controller": "tsfa"}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(tiny_raw))
    assert main(["validate", str(p)]) == 2
    assert capsys.readouterr().err.startswith("error: controller.latency_budget_s: ")


def test_tsfa_offline_stage_picks_a_rank_and_logs_the_table(tiny_raw, tmp_path):
    tiny_raw["rounds"] = 2
    tiny_raw["method"] = {"compressor": "soft", "controller": "tsfa",
                          "controller_options": {"rank_candidates": [1, 2, 4],
                                                 "lambda_candidates": [0.0, 1.0]}}
    tiny_raw["controller"] = {"latency_budget_s": 0.05}
    tiny_raw["output"] = {"dir": str(tmp_path / "off"), "plots": False}
    path, summary = run_scenario(parse_scenario(tiny_raw), progress=False)
    rows = read_csv(path / "tsfa_offline.csv")
    assert len(rows) == 6 and sum(float(r["chosen"]) for r in rows) == 1
    chosen = next(r for r in rows if float(r["chosen"]) == 1)
    assert summary["lora_rank"] == int(chosen["rank"])
    feasible = [r for r in rows if r["surrogate"] != "inf"]
    assert float(chosen["surrogate"]) == min(float(r["surrogate"]) for r in feasible)
    for r in rows:  # rank gap falls with the rank; latency grows with it
        assert 0 <= float(r["rank_gap"]) <= 1
    by_rank = {int(r["rank"]): float(r["latency_full_s"]) for r in rows}
    assert by_rank[1] < by_rank[2] < by_rank[4]


def test_statistical_csi_plans_with_the_ergodic_rate(tiny_raw, tmp_path):
    """Closed form: E[log2(1 + snr g)] = e^{1/snr} E1(1/snr) / ln 2 for Rayleigh g."""
    from scipy.special import exp1

    tiny_raw["channel"]["csi"] = {"kind": "statistical"}
    _, clients = one_round(tiny_raw, tmp_path, "stat")
    from wirelessfl.network.link import noise_psd_w_hz, snr_bandwidth_product_hz

    n0 = noise_psd_w_hz(-174.0, 7.0)
    for c in clients:
        cc = snr_bandwidth_product_hz(23.0, float(c["gain_db"]), 1.0, n0)
        b = float(c["bandwidth_hz"])
        snr = cc / b
        ergodic = b * np.exp(1 / snr) * exp1(1 / snr) / np.log(2)
        assert float(c["planned_upload_s"]) == pytest.approx(float(c["payload_bits"]) / ergodic,
                                                             rel=5e-3)


def test_validate_skips_the_offline_pilot_unless_asked(tiny_raw, tmp_path, capsys):
    tiny_raw["method"] = {"compressor": "soft", "controller": "tsfa",
                          "controller_options": {"rank_candidates": [1, 2]}}
    tiny_raw["controller"] = {"latency_budget_s": 0.05}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(tiny_raw))
    assert main(["validate", str(p)]) == 0
    assert "tsfa_offline_rank" in (out := capsys.readouterr().out) and "not chosen" in out
    assert main(["validate", str(p), "--offline"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "tsfa_offline_rank" in x)
    assert int(line.split()[-1]) in (1, 2)
    tiny_raw["method"]["controller_options"]["rank_candidates"] = [0, 2]
    p.write_text(yaml.safe_dump(tiny_raw))
    assert main(["validate", str(p)]) == 2  # the candidates are still checked
    assert "rank_candidates" in capsys.readouterr().err


def test_an_unreachable_budget_warns_once_and_the_run_logs_its_fallback(tiny_raw, tmp_path,
                                                                         caplog):
    tiny_raw["method"] = {"aggregator": "fedit", "compressor": "soft", "controller": "tsfa"}
    tiny_raw["controller"] = {"latency_budget_s": 1e-6}
    with caplog.at_level("WARNING", logger="wirelessfl"):
        metrics, _ = one_round(tiny_raw, tmp_path, "unreachable")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert sum(m.startswith("controller.latency_budget_s: ") for m in warnings) == 1
    assert any("controller fell back" in m for m in warnings)
    events = [json.loads(x) for x in (tmp_path / "unreachable" / "events.jsonl").read_text()
              .splitlines()]
    assert events[0]["event"] == "warning"
    assert any(e["event"] == "controller_fallback" and e["tsfa_budget_unreachable"] == 1.0
               for e in events)
    assert float(metrics[-1]["tsfa_keep_ratio"]) < 1.0


def test_tsfa_sched_leaves_clients_out_and_the_round_goes_on(tiny_raw, tmp_path):
    tiny_raw["rounds"] = 3
    tiny_raw["method"] = {"aggregator": "fedit", "compressor": "soft", "controller": "tsfa_sched",
                          "controller_options": {"v": 0.001, "min_participation": 0.3}}
    tiny_raw["controller"] = {"latency_budget_s": 1e-3}
    metrics, clients = one_round(tiny_raw, tmp_path, "sched")
    out = [c for c in clients if c["drop_reason"] == "unscheduled"]
    assert out, "a tiny budget and a small V must leave someone out"
    assert all(float(c["bandwidth_hz"]) == 0.0 and c["received"] == "False" for c in out)
    assert all(int(m["received"]) >= 1 for m in metrics)


def test_a_metric_that_first_appears_later_is_kept(tmp_path):
    from wirelessfl.results import ResultsWriter, read_csv

    w = ResultsWriter(tmp_path / "run")
    w.append_rows("metrics", [{"round": 0, "a": 1.0}])
    w.append_rows("metrics", [{"round": 1, "a": 2.0, "late": 7.0}])
    w.append_rows("clients", [{"client": 0}, {"client": 1, "soft": 0.5}])  # within one call
    w.append_rows("metrics", [{"round": 2, "a": 3.0}])
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [r["late"] for r in rows] == ["", "7.0", ""]
    assert [r["a"] for r in rows] == ["1.0", "2.0", "3.0"]
    assert read_csv(tmp_path / "run" / "clients.csv")[1]["soft"] == "0.5"
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_summary_json_is_strict_json_even_with_nan(tmp_path):
    from wirelessfl.results import ResultsWriter

    w = ResultsWriter(tmp_path / "run")
    w.write_summary({"final_accuracy": float("nan"), "x": [1.0, float("inf")], "ok": 0.5})
    text = (tmp_path / "run" / "summary.json").read_text()
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert back == {"final_accuracy": None, "x": [1.0, None], "ok": 0.5}
