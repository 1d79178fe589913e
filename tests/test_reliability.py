"""Bad input never gives a traceback or a hang; faults during a run are events.

A corpus of the mistakes seen in the wild (each a plain case) and a property-based
fuzz test of malformed scenarios and overrides.
"""

from __future__ import annotations

import copy
import json
import math
import time

import numpy as np
import pytest
import torch  # noqa: F401  (imported up front: the time limits count validation, not imports)
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TINY
from wirelessfl.cli import main
from wirelessfl.errors import ScenarioError
from wirelessfl.yamlsafe import loads


def one_line_error(capsys, argv: list[str], key: str | None = None) -> str:
    t0 = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - t0 < 10
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and len(err) < 600, err
    if key is not None:
        assert err.startswith(f"error: {key}"), err
    return err


def write(tmp_path, raw, name="s.yaml") -> str:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw) if not isinstance(raw, str) else raw)
    return str(p)


# ------------------------------------------------------------------ the YAML reader


def test_yaml_scalars_follow_yaml_1_2():
    assert loads("a: 1:30") == {"a": "1:30"}  # not sexagesimal 90
    assert loads("a: 010") == {"a": 10}  # not octal 8
    assert loads("a: yes\nb: off") == {"a": "yes", "b": "off"}  # not booleans
    assert loads("a: 1e6\nb: -2.5E-3\nc: .inf\nd: 0x10\ne: 0o17") == {
        "a": 1e6, "b": -2.5e-3, "c": math.inf, "d": 16, "e": 15}
    assert loads("a: true\nb: False") == {"a": True, "b": False}


def test_duplicate_keys_are_an_error():
    with pytest.raises(ScenarioError, match=r"rounds: appears twice .*lines 1 and 3"):
        loads("rounds: 3\nseed: 1\nrounds: 4\n")


def test_billion_laughs_and_deep_nesting_are_refused_fast():
    lol = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lol.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join(["*" + chr(96 + i)] * 10) + "]")
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="aliases expand"):
        loads("\n".join(lol))
    with pytest.raises(ScenarioError, match="nesting deeper"):
        loads("a: " + "[" * 200 + "]" * 200)
    assert time.perf_counter() - t0 < 2


@pytest.mark.parametrize("content, key", [
    (b"", "scenario file"),
    (b"{}\n", "scenario file"),
    ("name: caf\u00e9\nrounds: 2\n".encode("latin-1"), "scenario file"),
    ("name: x\n".encode("utf-16"), "scenario file"),
    (b"name: x\x00\n", "scenario file"),
    (b"rounds: 2\nrounds: 3\n", "rounds"),
    (b"a: [1, 2\n", "scenario file"),
    (b"- just\n- a list\n", "scenario"),
    (b"x" * (2 << 20), "scenario file"),
])
def test_bad_files_are_one_line(tmp_path, capsys, content, key):
    p = tmp_path / "s.yaml"
    p.write_bytes(content)
    one_line_error(capsys, ["validate", str(p)], key)


# ------------------------------------------------------------------ the schema

CORPUS = [
    ({"rounds": True}, "rounds"),
    ({"radio": {"uplink_bandwidth_hz": True}}, "radio.uplink_bandwidth_hz"),
    ({"radio": {"uplink_bandwidth_hz": 1e-300}}, "radio.uplink_bandwidth_hz"),
    ({"radio": {"uplink_bandwidth_hz": math.inf}}, "radio.uplink_bandwidth_hz"),
    ({"radio": {"tx_power_dbm": math.nan}}, "radio.tx_power_dbm"),
    ({"radio": {"noise_psd_dbm_hz": -1}}, None),  # valid: a very noisy receiver
    ({"clients": {"count": 1e8}}, "clients.count"),
    ({"sim": {"expected_latency_rounds": 1e9}}, "sim.expected_latency_rounds"),
    ({"compute": {"torch_threads": 1000000000}}, "compute.torch_threads"),
    ({"clients": {"placement": {"radius_m": 1e5}}}, "clients.placement.radius_m"),
    ({"clients": {"placement": {"distances_m": [5, 6, 7]}}}, "clients.placement.distances_m"),
    ({"data": {"synthetic": {"num_classes": 200}}}, "data.synthetic.vocab_size"),
    ({"data": {"test_fraction": 1e-4}}, "data.test_fraction"),
    ({"model": {"lora": {"target_modules": []}}}, "model.lora.target_modules"),
    ({"model": {"lora": {"target_modules": ["q_proj"]}}}, "model.lora.target_modules"),
    ({"channel": {"fading": {"model": "collections:OrderedDict"}}}, "channel.fading.model"),
    ({"channel": {"fading": {"model": ":"}}}, "channel.fading.model"),
    ({"channel": {"fading": {"model": "rayleigh", "coherence_time_s": True}}},
     "channel.fading.coherence_time_s"),
    ({"channel": {"csi": {"kind": "statistical", "error_std_db": 2}}}, "channel.csi.kind"),
    ({"method": {"compressor": "soft", "compressor_options": {"lambda_orth": math.inf}}},
     "method.compressor_options.lambda_orth"),
    ({"name": ".."}, "name"),
    ({"output": {"dir": "../../elsewhere"}}, "output.dir"),
    ({"seed": -1}, "seed"),
    ({"output": {"save_adapter": 0}}, "output.save_adapter"),
    ({"output": {"dir": ""}}, "output.dir"),
    ({"channel": {"csi": {"error_std_db": 1e300}}}, "channel.csi.error_std_db"),
]


@pytest.mark.parametrize("patch, key", CORPUS)
def test_corpus_of_mistakes(tmp_path, capsys, patch, key):
    raw = copy.deepcopy(TINY)
    for section, value in patch.items():
        if isinstance(value, dict) and isinstance(raw.get(section), dict):
            merged = {**raw[section]}
            for k, v in value.items():
                merged[k] = ({**merged[k], **v} if isinstance(v, dict)
                             and isinstance(merged.get(k), dict) else v)
            raw[section] = merged
        else:
            raw[section] = value
    raw["sim"] = {**raw.get("sim", {}), "expected_latency_rounds": 5,
                  **patch.get("sim", {})}
    path = write(tmp_path, raw)
    if key is None:
        assert main(["validate", path]) == 0
        return
    one_line_error(capsys, ["validate", path], key)


def test_set_overrides_use_the_same_rules(tmp_path, capsys):
    path = write(tmp_path, TINY)
    one_line_error(capsys, ["validate", path, "--set", "rounds=true"], "rounds")
    one_line_error(capsys, ["validate", path, "--set", "rounds=[1"], "--set rounds")
    one_line_error(capsys, ["validate", path, "--set", "radio.tx_power_dbm=.nan"],
                   "radio.tx_power_dbm")


# ------------------------------------------------------------------ fuzzing

KEYS = ["name", "seed", "rounds", "clients", "clients.count", "clients.fraction",
        "clients.local_steps", "clients.batch_size", "clients.learning_rate",
        "clients.device", "clients.selection", "clients.placement.model",
        "clients.placement.radius_m", "clients.placement.distances_m",
        "clients.mobility.model", "clients.mobility.speed_mps", "radio",
        "radio.uplink_bandwidth_hz", "radio.downlink_bandwidth_hz", "radio.tx_power_dbm",
        "radio.noise_psd_dbm_hz", "radio.bits_per_value", "channel.fading",
        "channel.fading.model", "channel.fading.coherence_time_s", "channel.pathloss.model",
        "channel.csi.kind", "channel.csi.error_std_db", "model.name", "model.max_length",
        "model.lora.rank", "model.lora.alpha", "model.lora.dropout",
        "model.lora.target_modules", "model.lora.client_ranks", "data.name",
        "data.test_fraction", "data.partition.alpha", "data.synthetic.num_samples",
        "data.synthetic.num_classes", "data.synthetic.vocab_size", "method.aggregator",
        "method.compressor", "method.controller", "method.controller_options",
        "method.compressor_options", "controller.latency_budget_s", "sim.deadline_s",
        "sim.max_upload_s", "eval.every", "compute.device", "compute.torch_threads",
        "output.dir", "unknown_key", "clients.unknown", "radio.resource_block_hz",
        "channel.fading.k_factor_db", "channel.fading.m", "channel.fading.profile",
        "channel.fading.subbands", "channel.pathloss.exponent",
        "channel.pathloss.reference_loss_db", "channel.pathloss.carrier_frequency_hz",
        "channel.pathloss.bs_height_m", "method.controller_options.rank_candidates"]

VALUES = st.one_of(
    st.booleans(), st.none(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e-300, 1e300, 1e9, "", "x", "1e6", ":", "a:b", "os:getcwd",
                     "wirelessfl.cli:main", "../..", "module:Class", "{}", [], {}, [1, 2],
                     {"model": "nope"}, {"a": {"b": {"c": 1}}}, "rayleigh", "tsfa",
                     "soft", "cuda", "explicit", "statistical", ["query"], ["nope"],
                     1e308, -1e308, 10**400, [""], ["query", "query"], "/dev/null", "a\x00b",
                     "x" * 2000, "tdl", "rician", "uma", "log_distance", "free_space"]),
    st.text(max_size=12), st.lists(st.integers(-3, 3), max_size=4))


def _yaml_text(value) -> str:
    """``value`` as a user would type it after ``--set key=``."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if value != value else (".inf" if value > 0 else "-.inf")
    return value if isinstance(value, str) else json.dumps(value)


def _put(raw: dict, key: str, value) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


@settings(max_examples=1000, deadline=10_000, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=3),
       via_set=st.booleans())
def test_fuzzed_scenarios_exit_0_or_2_with_one_line(tmp_path_factory, mutations, via_set):
    """Validation (schema, plug-ins, cross-field checks) of malformed scenarios: status 0 or
    2, one line on stderr, no traceback, within 10 s each. Valid mutations stop before
    the model is built (``build.check``) to keep 1,000 examples within CI's budget."""
    import contextlib
    import io

    from wirelessfl import build
    from wirelessfl.cli import guarded
    from wirelessfl.scenario import load_scenario

    raw = copy.deepcopy(TINY)
    raw["sim"] = {"expected_latency_rounds": 5}
    overrides = []
    for key, value in mutations:
        if via_set:
            overrides.append(f"{key}={_yaml_text(value)}")
        else:
            _put(raw, key, value)
    folder = tmp_path_factory.mktemp("fuzz")
    try:
        text = yaml.safe_dump(raw)
    except yaml.YAMLError:
        return
    (folder / "s.yaml").write_text(text)
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        status = guarded(lambda: build.check(load_scenario(folder / "s.yaml", overrides)))
    assert time.perf_counter() - t0 < 10
    assert status in (0, 2)
    lines = err.getvalue().strip().splitlines()
    if status == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert len(lines[0]) <= 400  # long values are cut


# ------------------------------------------------------------------ faults in a run


def test_a_non_finite_update_is_dropped_and_logged(tiny_raw, tmp_path, monkeypatch):

    import wirelessfl
    from wirelessfl.learning.workbench import Workbench

    real = Workbench.train_group

    def train_group(self, jobs, regularizer=None):  # batched or one by one, 1 diverges
        out = real(self, jobs, regularizer)
        for u in out:
            if u.client_id == 1:
                u.state = {n: torch.full_like(t, float("nan")) for n, t in u.state.items()}
                u.train_loss = float("nan")
        return out

    monkeypatch.setattr(Workbench, "train_group", train_group)
    r = wirelessfl.run(tiny_raw, output=tmp_path / "run", rounds=2)
    bad = r.clients[r.clients["client"] == 1]
    assert (bad["drop_reason"] == "non_finite_update").all() and not bad["received"].any()
    assert (r.metrics["received"] == 2).all()
    assert np.isfinite(r.metrics["accuracy"]).all() and np.isfinite(r.metrics["train_loss"]).all()
    json.loads((tmp_path / "run" / "summary.json").read_text())  # strict JSON


def test_a_round_with_no_update_keeps_the_model_and_says_so(tiny_raw, tmp_path):
    import wirelessfl

    tiny_raw["sim"] = {"deadline_s": 1e-9}
    r = wirelessfl.run(tiny_raw, output=tmp_path / "run", rounds=2)
    assert r.summary["rounds_aggregated"] == 0
    assert sum(e["event"] == "no_aggregation" for e in r.events) == 2
    assert r.metrics["accuracy"].nunique() == 1  # the untrained model both rounds


def test_a_broadcast_that_cannot_finish_is_an_outage(tiny_raw, tmp_path):
    import wirelessfl

    tiny_raw["radio"] = {**tiny_raw.get("radio", {}), "bs_tx_power_dbm": -100,
                         "downlink_bandwidth_hz": 1}
    tiny_raw["sim"] = {"max_upload_s": 5.0}
    r = wirelessfl.run(tiny_raw, output=None, rounds=2)
    assert (r.clients["drop_reason"] == "downlink_outage").all()
    assert np.allclose(r.metrics["round_latency_s"], 5.0)


@pytest.mark.parametrize("rows, match", [
    ("0,0,1\n0,1,1\n0.1,0,1\n0.1,0,1\n", "line 5: link 0 at time 0.1 repeats line 4"),
    ("0,0,1\n0,1,1\n0.1,0,1\n0.2,0,1\n0.2,1,1\n", "link 1 has no sample at time 0.1"),
    ("0,0,1\n0,1,nan\n0.1,0,1\n0.1,1,1\n", "line 3"),
    ("0,0,1\n0,1,-1e6\n0.1,0,1\n0.1,1,1\n", "positive and finite"),
])
def test_bad_traces_name_the_row(tmp_path, capsys, rows, match):
    trace = tmp_path / "t.csv"
    trace.write_text("time_s,link,gain_db\n" + rows)
    raw = copy.deepcopy(TINY)
    raw["clients"] = {**raw["clients"], "count": 2}
    raw["channel"] = {"fading": {"model": "trace", "path": str(trace)}}
    err = one_line_error(capsys, ["validate", write(tmp_path, raw)], "channel.fading")
    assert match in err


def test_overwrite_never_empties_a_folder_that_is_not_a_run(tiny_raw, tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "plots").mkdir(parents=True)
    (mine / "plots" / "thesis.png").write_bytes(b"precious")
    tiny_raw["output"] = {"dir": str(mine), "plots": False}
    one_line_error(capsys, ["run", write(tmp_path, tiny_raw), "--overwrite", "-q"],
                   "output.dir")
    assert (mine / "plots" / "thesis.png").read_bytes() == b"precious"


def test_a_run_killed_before_its_first_checkpoint_says_there_is_nothing_to_resume(
        tiny_raw, tmp_path, capsys):
    run = tmp_path / "run"
    tiny_raw["output"] = {"dir": str(run), "plots": False}
    scenario = write(tmp_path, tiny_raw)
    assert main(["run", scenario, "-q"]) == 0
    (run / "summary.json").unlink()  # as if killed after round 1's row, before its checkpoint
    before = (run / "metrics.csv").read_bytes()
    err = one_line_error(capsys, ["run", scenario, "-q"], "output.dir")
    assert "before its first checkpoint" in err and "--overwrite" in err
    assert (run / "metrics.csv").read_bytes() == before
    assert main(["run", scenario, "-q", "--overwrite"]) == 0


def test_a_full_disk_is_one_line_and_the_run_resumes(tiny_raw, tmp_path, capsys, monkeypatch):
    import errno

    from wirelessfl.results import ResultsWriter

    real = ResultsWriter.append_rows
    calls = {"n": 0}

    def full(self, table, rows):
        if table == "metrics":
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real(self, table, rows)

    monkeypatch.setattr(ResultsWriter, "append_rows", full)
    path = write(tmp_path, tiny_raw)
    run = tmp_path / "run"
    err = one_line_error(capsys, ["run", path, "--out", str(run), "-q"], "output.dir")
    assert "No space left" in err and "--resume" in err
    monkeypatch.setattr(ResultsWriter, "append_rows", real)
    assert main(["run", path, "--out", str(run), "-q", "--resume"]) == 0
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + tiny_raw["rounds"]


@pytest.mark.parametrize("fading, key", [
    ({"model": "rayleigh", "coherence_time_s": 1e-300}, "channel.fading.coherence_time_s"),
    ({"model": "jakes", "speed_mps": 1e300}, "channel.fading.speed_mps"),
    ({"model": "jakes", "max_doppler_hz": 100, "time_resolution_s": 1e-300},
     "channel.fading.time_resolution_s"),
])
def test_channel_time_scales_are_bounded(tmp_path, capsys, fading, key):
    raw = copy.deepcopy(TINY)
    raw["channel"] = {"fading": fading}
    one_line_error(capsys, ["validate", write(tmp_path, raw)], key)


# ------------------------------------------------------------------ the edges, finished

EDGES = [
    ({"channel": {"fading": {"model": "rician", "k_factor_db": 1e308}}},
     "channel.fading.k_factor_db"),
    ({"channel": {"fading": {"model": "nakagami", "m": 1e308}}}, "channel.fading.m"),
    ({"channel": {"pathloss": {"model": "log_distance", "exponent": 1e308}}},
     "channel.pathloss.exponent"),
    ({"channel": {"pathloss": {"model": "log_distance", "reference_loss_db": -1e308}}},
     "channel.pathloss.reference_loss_db"),
    ({"channel": {"pathloss": {"model": "free_space", "carrier_frequency_hz": 1e-300}}},
     "channel.pathloss.carrier_frequency_hz"),
    ({"channel": {"pathloss": {"model": "uma", "bs_height_m": 1e308}}},
     "channel.pathloss.bs_height_m"),
    ({"channel": {"pathloss": {"model": "channels.rayleigh:BlockRayleigh"}}},
     "channel.pathloss.model"),
    ({"model": {"lora": {"target_modules": [""]}}}, "model.lora.target_modules"),
    ({"model": {"lora": {"target_modules": ["query", "query"]}}}, "model.lora.target_modules"),
    ({"output": {"dir": "/dev/null"}}, "output.dir"),
    ({"output": {"dir": "a\x00b"}}, "output.dir"),
    ({"output": {"dir": "x" * 2000}}, "output.dir"),
    ({"method": {"controller": "tsfa", "controller_options": {"rank_candidates": []}}},
     "method.controller_options.rank_candidates"),
    ({"method": {"compressor": "soft", "compressor_options": {"lambda_orth": 1e300}}},
     "method.compressor_options.lambda_orth"),
]


@pytest.mark.parametrize("patch, key", EDGES)
def test_the_last_bad_inputs_are_one_line(tmp_path, capsys, patch, key):
    raw = copy.deepcopy(TINY)
    for section, value in patch.items():
        for k, v in value.items():
            raw.setdefault(section, {})[k] = ({**raw[section][k], **v} if isinstance(v, dict)
                                              and isinstance(raw[section].get(k), dict) else v)
    err = one_line_error(capsys, ["validate", write(tmp_path, raw)], key)
    assert len(err) < 300, err  # a long value is cut, not echoed whole


def test_a_huge_integer_in_set_is_one_line(tmp_path, capsys):
    path = write(tmp_path, TINY)
    one_line_error(capsys, ["validate", path, "--set", "rounds=" + "9" * 5000], "--set rounds")


def test_usage_mistakes_are_one_line_with_a_hint(capsys):
    for argv in (["run"], ["validate", "x.yaml", "--bogus"], ["frobnicate"]):
        with pytest.raises(SystemExit) as out:
            main(argv)
        assert out.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: wirelessfl") and "\n" not in err and "--help" in err


@pytest.mark.parametrize("command", ["channels", "plugins", "schema"])
def test_a_closed_pipe_ends_quietly(command):
    """``wirelessfl channels | head -1``: exit 0, nothing on stderr."""
    import subprocess
    import sys

    cmd = f"{sys.executable} -m wirelessfl.cli {command} | head -1"
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and len(out.stdout.splitlines()) == 1


def test_every_numeric_plugin_option_is_bounded():
    """Every int or float option of every registered plug-in states both ends of its
    physical range (and ``wirelessfl plugins`` shows them)."""
    import typing

    from wirelessfl.cli import _range, plugin_registries

    unbounded = []
    for _, reg in plugin_registries():
        for name in reg.names():
            for field, info in reg.get(name).Params.model_fields.items():
                args = typing.get_args(info.annotation) or (info.annotation,)
                if bool in args or not any(a in (int, float) for a in args):
                    continue
                text = _range(info)
                if "inf" in text or not text:
                    unbounded.append(f"{name}.{field}")
    assert unbounded == []


def test_validate_bounds_its_work_on_microsecond_blocks(monkeypatch):
    """1 us coherence blocks: uploads span ~10^5 blocks. The expected latency plays
    fewer rounds (the fading averages within each) and agrees with 10 us blocks."""
    from wirelessfl.build import build_cell
    from wirelessfl.scenario import load_scenario
    from wirelessfl.sim import expected

    played = []
    real = expected.simulate_round
    monkeypatch.setattr(expected, "simulate_round",
                        lambda *a: played.append(1) or real(*a))
    values, rounds = [], []
    for tc in (1e-6, 1e-5):
        sc = load_scenario("scenarios/smoke.yaml", [f"channel.fading.coherence_time_s={tc}"])
        cell = build_cell(sc)
        played.clear()
        values.append(expected.expected_round_latency_s(cell, 0.01, 2e6, 0.0))
        rounds.append(len(played))
    assert values[0] == pytest.approx(values[1], rel=0.02)
    assert 5 <= rounds[0] < 200  # bounded by MAX_BLOCK_SAMPLES


def test_a_finished_run_leaves_no_lock_and_a_short_repr(tiny_raw, tmp_path):
    import wirelessfl

    run = wirelessfl.run(tiny_raw, output=tmp_path / "r")
    assert not (tmp_path / "r" / ".lock").exists()
    text = repr(run)
    assert text.startswith("Run('tiny', 3 rounds, final accuracy") and len(text) < 200
    assert "in memory" in repr(wirelessfl.run(tiny_raw, output=None))
    again = wirelessfl.run(tiny_raw, output=tmp_path / "r", overwrite=True)  # lockable again
    assert again.finished and not (tmp_path / "r" / ".lock").exists()


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    from wirelessfl.errors import OutputError
    from wirelessfl.results import RunLock

    first = RunLock(tmp_path)
    with pytest.raises(OutputError):
        RunLock(tmp_path)
    first.release()
    assert not (tmp_path / ".lock").exists()
    RunLock(tmp_path).release()


def test_the_wrong_kind_of_class_reads_well(tmp_path, capsys):
    raw = copy.deepcopy(TINY)
    raw["method"] = {"aggregator": "channels.rayleigh:BlockRayleigh"}
    err = one_line_error(capsys, ["validate", write(tmp_path, raw)], "method.aggregator")
    assert "is not an aggregator (an Aggregator subclass)" in err


def test_a_plugin_next_to_the_scenario_needs_no_pythonpath(tmp_path, capsys):
    import sys

    (tmp_path / "half_gain_here.py").write_text(
        "import numpy as np\n"
        "from channels.base import Channel\n\n\n"
        "class HalfGain(Channel):\n"
        "    coherence_time_s = float('inf')\n\n"
        "    def reset(self, n_links, rng):\n"
        "        self.n_links = int(n_links)\n\n"
        "    def gains(self, times_s):\n"
        "        return np.full((self.n_links, np.size(times_s)), 0.5)\n")
    raw = copy.deepcopy(TINY)
    raw["channel"] = {"fading": {"model": "half_gain_here:HalfGain"}}
    path = write(tmp_path, raw)
    try:
        assert main(["validate", path]) == 0, capsys.readouterr().err
    finally:
        if str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))
        sys.modules.pop("half_gain_here", None)
