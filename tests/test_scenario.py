"""Scenario validation: every mistake is one line naming the key, exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from wirelessfl.cli import main
from wirelessfl.errors import ScenarioError
from wirelessfl.scenario import apply_override, json_schema, load_scenario, parse_scenario


def write(tmp_path, raw, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw))
    return p


def run_cli(capsys, *argv):
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize(
    ("patch", "key", "fragment"),
    [
        ({"radio": {"bandwith_hz": 1}}, "radio.bandwith_hz", "allowed: uplink_bandwidth_hz"),
        ({"radio": {"uplink_bandwidth_hz": -5}}, "radio.uplink_bandwidth_hz",
         "greater than or equal to 1"),
        ({"clients": {"count": "ten"}}, "clients.count", "valid integer"),
        ({"rounds": 0}, "rounds", "greater than or equal to 1"),
        ({"model": {"name": "gpt-9"}}, "model.name",
         "available: hf, minilm-l6, smollm2-135m, tiny-bert, tiny-llama"),
        ({"channel": {"fading": {"model": "raleigh"}}}, "channel.fading.model",
         "available: awgn, cdl, jakes, nakagami, rayleigh, rician, tdl, trace"),
        ({"channel": {"fading": {"model": "rayleigh", "coherence_s": 1}}},
         "channel.fading.coherence_s", "rayleigh accepts: coherence_time_s"),
        ({"channel": {"fading": {"model": "rayleigh", "coherence_time_s": -1}}},
         "channel.fading.coherence_time_s", "greater than or equal to 0.000001"),
        ({"method": {"aggregator": "fedavgg"}}, "method.aggregator", "available: fedit"),
        ({"method": {"controller": "nope"}}, "method.controller", "available: equal"),
        ({"clients": {"device": "toaster"}}, "clients.device", "available: iot, phone"),
        ({"data": {"name": "mnist"}}, "data.name",
         "available: bbc, csv, hf_disk, jsonl, synthetic"),
        ({"clients": {"count": 2, "placement": {"model": "explicit", "distances_m": [5]}}},
         "clients.placement.distances_m", "has 1 entries"),
    ],
)
def test_user_errors_name_the_key_and_exit_2(tmp_path, capsys, tiny_raw, patch, key, fragment):
    for section, value in patch.items():
        if isinstance(value, dict) and isinstance(tiny_raw.get(section), dict):
            tiny_raw[section].update(value)
        else:
            tiny_raw[section] = value
    tiny_raw["output"]["dir"] = str(tmp_path / "out")
    code, out, err = run_cli(capsys, "validate", str(write(tmp_path, tiny_raw)))
    assert code == 2
    line = err.strip()
    assert "\n" not in line, "one line only"
    assert line.startswith(f"error: {key}: ")
    assert fragment in line
    assert not (tmp_path / "out").exists(), "nothing written on bad input"


def test_missing_file_and_bad_yaml(tmp_path, capsys):
    code, _, err = run_cli(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("rounds: [1, 2\nseed: 0\n")
    code, _, err = run_cli(capsys, "run", str(bad))
    assert code == 2 and "line" in err and err.count("\n") == 1


def test_no_traceback_from_the_console_script(tmp_path, tiny_raw):
    tiny_raw["radio"]["uplink_bandwidth_hz"] = -1
    p = write(tmp_path, tiny_raw)
    res = subprocess.run([sys.executable, "-m", "wirelessfl.cli", "run", str(p)],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.strip() == ("error: radio.uplink_bandwidth_hz: Input should be greater "
                                  "than or equal to 1 (got -1)")


def test_set_overrides_parse_yaml_types(tmp_path, tiny_raw):
    p = write(tmp_path, tiny_raw)
    sc = load_scenario(p, ["clients.count=7", "radio.uplink_bandwidth_hz=2e7",
                           "channel.fading.model=awgn", "output.plots=true"])
    assert sc.clients.count == 7
    assert sc.radio.uplink_bandwidth_hz == 2e7
    assert sc.channel.fading.model == "awgn"
    with pytest.raises(ScenarioError) as err:
        load_scenario(p, ["seed"])
    assert err.value.key == "--set"
    raw = {"rounds": 3}
    with pytest.raises(ScenarioError) as err:
        apply_override(raw, "rounds.x=1")
    assert err.value.key == "rounds"


def test_defaults_and_required_key_paths_exist():
    sc = parse_scenario({})
    for path in ["seed", "rounds", "clients.count", "channel.fading.model",
                 "radio.uplink_bandwidth_hz", "model.name", "model.lora.rank", "data.name",
                 "data.partition.alpha", "method.aggregator", "method.compressor",
                 "method.controller", "controller.latency_budget_s", "output.dir"]:
        node = sc
        for part in path.split("."):
            node = getattr(node, part)
    assert sc.output_dir.as_posix() == "results/scenario"


def test_schema_is_json_and_names_the_sections(capsys):
    schema = json_schema()
    assert {"clients", "radio", "channel", "model", "method"} <= set(schema["properties"])
    code, out, _ = run_cli(capsys, "schema")
    assert code == 0 and json.loads(out)["title"] == "wirelessfl scenario"


def test_scenario_reference_doc_is_up_to_date():
    from pathlib import Path

    from wirelessfl.docs_gen import render

    doc = Path(__file__).parent.parent / "docs" / "scenario.md"
    assert doc.read_text() == render(), "run: python -m wirelessfl.docs_gen > docs/scenario.md"


def test_the_column_glossary_is_current_and_complete(tiny_raw):
    """docs/columns.md is generated from wirelessfl/columns.py, and a causal LM with
    generation metrics and expected-finish plans writes no column it lacks (the
    matrix test checks every plug-in combination the same way)."""
    from pathlib import Path

    import wirelessfl
    from wirelessfl.columns import CLIENTS, METRICS, markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "columns.md"
    assert doc.read_text() == markdown(), \
        "run: python -m wirelessfl.docs_gen --columns > docs/columns.md"
    tiny_raw.update(rounds=2)
    tiny_raw["model"] = {"name": "tiny-llama", "max_length": 8, "lora": {"rank": 2}}
    tiny_raw["eval"] = {"generate": {"samples": 2, "max_new_tokens": 2}}
    tiny_raw["channel"] = {"fading": {"model": "jakes", "max_doppler_hz": 5.0},
                           "csi": {"planning": "expected_finish"}}
    r = wirelessfl.run(tiny_raw, output=None)
    assert {"perplexity", "rougeL", "planned_round_latency_s"} <= set(r.metrics.columns)
    assert set(r.metrics.columns) <= set(METRICS), set(r.metrics.columns) - set(METRICS)
    assert set(r.clients.columns) <= set(CLIENTS)
