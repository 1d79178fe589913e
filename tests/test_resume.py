"""Crash safety: kill -9 at a random round, then --resume, gives byte-identical tables;
one writer per run folder; no sweep worker outlives its sweep."""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import TINY
from wirelessfl.cli import main

TABLES = ("metrics.csv", "clients.csv", "events.jsonl")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# many mutable parts at once: TSFA's offline stage and queues, SOFT, time-correlated
# fading, mobility, CSI error, partial participation, FedTree's clusters
HARD = {**TINY, "rounds": 10,
        "clients": {**TINY["clients"], "count": 5, "fraction": 0.6,
                    "mobility": {"model": "random_waypoint", "speed_mps": 5.0}},
        "channel": {"fading": {"model": "jakes", "speed_mps": 3.0},
                    "csi": {"error_std_db": 1.0}},
        "method": {"aggregator": "fedtree", "compressor": "soft", "controller": "tsfa_sched",
                   "controller_options": {"rank_candidates": [1, 2]}},
        "controller": {"latency_budget_s": 0.05},
        "output": {"plots": False, "save_adapter": True}}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "wirelessfl.cli", *args]


def rows(path: Path) -> int:
    f = path / "metrics.csv"
    return max(sum(1 for _ in f.open()) - 1, 0) if f.is_file() else 0


def kill_at(args: list[str], folder: Path, at_rows: int) -> None:
    """Start ``args`` and SIGKILL it as soon as ``metrics.csv`` holds ``at_rows`` rows and
    a checkpoint exists (a row is appended just before its round's checkpoint is written)."""
    p = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while ((rows(folder) < at_rows or not (folder / "checkpoint.pt").is_file())
           and p.poll() is None and time.time() - t0 < 120):
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()


def test_kill_9_at_a_random_round_then_resume_is_byte_identical(tmp_path):
    scenario = tmp_path / "hard.yaml"
    scenario.write_text(yaml.safe_dump(HARD))
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run(cli("run", str(scenario), "-q", "--out", str(ref)), env=ENV, check=True)
    at = int(np.random.default_rng(int(time.time())).integers(1, HARD["rounds"] - 1))
    kill_at(cli("run", str(scenario), "-q", "--out", str(run)), run, at)
    assert not (run / "summary.json").exists(), "the run finished before the kill"
    out = subprocess.run(cli("run", str(scenario), "-q", "--out", str(run)), env=ENV,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--resume" in out.stderr  # refuses, with the hint
    subprocess.run(cli("run", str(scenario), "-q", "--out", str(run), "--resume"), env=ENV,
                   check=True)
    for f in (*TABLES, "tsfa_offline.csv"):
        assert filecmp.cmp(ref / f, run / f, shallow=False), f"{f} differs (killed at {at})"
    assert filecmp.cmp(ref / "adapter" / "adapter_model.safetensors",
                       run / "adapter" / "adapter_model.safetensors", shallow=False)
    assert not (run / "checkpoint.pt").exists()  # cleaned up once finished


def test_resume_checks_the_scenario_and_the_folder(tiny_raw, tmp_path, capsys):
    tiny_raw["rounds"] = 4
    tiny_raw["output"] = {"plots": True, "save_adapter": False}
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(tiny_raw))
    run = tmp_path / "run"
    kill_at(cli("run", str(scenario), "-q", "--out", str(run)), run, 2)
    assert main(["run", str(scenario), "--out", str(run), "--resume", "--set", "seed=9"]) == 2
    err = capsys.readouterr().err
    assert "differs" in err and "at seed" in err
    assert main(["run", str(scenario), "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["run", str(scenario), "--out", str(run), "--resume", "-q"]) == 0
    assert rows(run) == 4
    shutil.rmtree(run / "plots")  # a kill between summary.json and the plots
    assert main(["run", str(scenario), "--out", str(run), "--resume", "-q"]) == 0
    assert (run / "plots" / "accuracy_vs_latency.png").is_file()


def test_a_second_writer_is_refused(tiny_raw, tmp_path, capsys):
    from wirelessfl.results import RunLock

    run = tmp_path / "run"
    run.mkdir()
    lock = RunLock(run)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(tiny_raw))
    try:
        assert main(["run", str(scenario), "--out", str(run), "-q"]) == 2
        err = capsys.readouterr().err
        assert f"being written by process {os.getpid()}" in err
    finally:
        lock.release()
    assert main(["run", str(scenario), "--out", str(run), "-q"]) == 0


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(d.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_a_killed_sweep_leaves_no_worker_and_resumes_byte_identical(tmp_path):
    args = ["sweep", "scenarios/smoke.yaml", "--grid", "seed=0,1,2,3", "--set", "rounds=10",
            "--set", "output.plots=false", "--set", "output.save_adapter=false", "-q",
            "--jobs", "2"]
    root = Path(__file__).resolve().parents[1]
    ref, out = tmp_path / "ref", tmp_path / "kill"
    subprocess.run(cli(*args, "--out", str(ref)), env=ENV, check=True, cwd=root)
    p = subprocess.Popen(cli(*args, "--out", str(out)), env=ENV, cwd=root,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not any(rows(d) >= 3 for d in out.glob("seed-*")) and time.time() - t0 < 120:
        time.sleep(0.01)
    workers = _children(p.pid)
    assert workers
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.time() + 10
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()
             and "Z" not in (Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[:1])]
    assert not alive, f"workers {alive} outlived the sweep"
    subprocess.run(cli(*args, "--out", str(out)), env=ENV, check=True, cwd=root)
    for run in sorted(d for d in ref.iterdir() if d.is_dir()):
        for f in TABLES:
            assert filecmp.cmp(run / f, out / run.name / f, shallow=False), (run.name, f)


def test_analysis_leaves_out_unfinished_runs(tiny_raw, tmp_path, capsys):
    import wirelessfl

    for seed in (0, 1):
        wirelessfl.run(tiny_raw, output=tmp_path / "sweep" / f"s{seed}", seed=seed, rounds=2)
    (tmp_path / "sweep" / "s1" / "summary.json").unlink()
    assert main(["summarize", str(tmp_path / "sweep"), "--out", str(tmp_path / "sum")]) == 0
    captured = capsys.readouterr()
    assert "left out 1 unfinished run" in captured.err
    assert "warning: " in captured.err and captured.err.count("\n") == 1
