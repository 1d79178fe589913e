"""Ray: sweeps as Ray tasks and client training on Ray actors, on a local Ray that the
tests start themselves (loopback, no dashboard, bounded memory) and always shut down.
Skipped with a reason when the [ray] extra is not installed."""

from __future__ import annotations

import filecmp
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

TABLES = ("metrics.csv", "clients.csv", "events.jsonl")


@pytest.fixture(scope="module")
def local_ray():
    os.environ["WIRELESSFL_RAY_SHIP_RESULTS"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 << 20,
             _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        os.environ.pop("WIRELESSFL_RAY_SHIP_RESULTS", None)


def scenario_file(tmp_path, **patch) -> str:
    raw = {**TINY, "rounds": 4, **patch}
    raw["compute"] = {"torch_threads": 1}
    raw["output"] = {"plots": False, "save_adapter": False}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    return str(p)


def same_tables(a: Path, b: Path, names=TABLES) -> None:
    for f in names:
        assert filecmp.cmp(a / f, b / f, shallow=False), f"{a.name}/{f} differs"


def test_a_ray_sweep_gives_the_local_sweep_and_resumes(local_ray, tmp_path, monkeypatch):
    from wirelessfl.sweeper import run_sweep

    s = scenario_file(tmp_path)
    grid = ["seed=0,1,2"]
    ref, _ = run_sweep(s, grid, [], 1, tmp_path / "local", progress=False)
    # workers without the driver's disk: the folders travel back through Ray
    monkeypatch.setenv("WIRELESSFL_RAY_SHIP_RESULTS", "1")
    out, rows = run_sweep(s, grid, [], 1, tmp_path / "ray", progress=False, backend="ray")
    assert [r["status"] for r in rows] == ["done"] * 3
    for run in ("seed-0", "seed-1", "seed-2"):
        same_tables(ref / run, out / run)
    # an interrupted run (its checkpoint, no summary) is resumed, the others skipped
    victim = out / "seed-1"
    (victim / "summary.json").unlink()
    from wirelessfl.results import ResultsWriter  # noqa: F401  (the folder stays ours)

    _, rows = run_sweep(s, grid, [], 1, out, progress=False, backend="ray")
    status = {r["run"]: r["status"] for r in rows}
    assert status["seed-0"] == status["seed-2"] == "skipped (done)"
    assert status["seed-1"] in ("done", "resumed")
    same_tables(ref / "seed-1", victim)


def test_a_killed_worker_is_retried_and_loses_no_run(local_ray, tmp_path):
    """SIGKILL the worker process running one run (its PID is in the folder's lock):
    Ray retries the task once, which resumes from the run's checkpoint."""
    from wirelessfl.sweeper import run_sweep

    s = scenario_file(tmp_path, rounds=12)
    grid = ["seed=0,1"]
    ref, _ = run_sweep(s, grid, [], 1, tmp_path / "local", progress=False)
    out = tmp_path / "ray"
    killed: list[int] = []

    def kill_one() -> None:
        lock, ckpt = out / "seed-0" / ".lock", out / "seed-0" / "checkpoint.pt"
        t0 = time.time()
        while time.time() - t0 < 120 and not (ckpt.exists() and lock.exists()):
            time.sleep(0.01)
        try:
            pid = lock.read_text().strip()
        except FileNotFoundError:  # the run ended (its lock is removed at the end)
            return
        if pid.isdigit() and int(pid) != os.getpid():
            os.kill(int(pid), signal.SIGKILL)
            killed.append(int(pid))

    t = threading.Thread(target=kill_one)
    t.start()
    _, rows = run_sweep(s, grid, [], 1, out, progress=False, backend="ray")
    t.join()
    assert killed, "no worker was killed"
    assert all(r["status"] in ("done", "resumed") for r in rows), rows
    for run in ("seed-0", "seed-1"):
        same_tables(ref / run, out / run)


@pytest.mark.parametrize("aggregator", ["fedit", "flora"])
def test_client_training_on_ray_actors_is_byte_identical(local_ray, tmp_path, aggregator):
    import wirelessfl

    raw = {**TINY, "rounds": 3, "compute": {"torch_threads": 1},
           "method": {"aggregator": aggregator},
           "output": {"plots": False, "save_adapter": False}}
    local = wirelessfl.run(raw, output=tmp_path / "local")
    remote = wirelessfl.run(raw, output=tmp_path / "ray",
                            set={"compute.backend": "ray", "compute.ray_actors": 2})
    assert local.finished and remote.finished
    same_tables(tmp_path / "local", tmp_path / "ray")
    assert ray.is_initialized()  # the fixture's Ray is reused, not shut down


def test_ray_actors_give_the_sequential_numbers_with_dropout(local_ray):
    """Groups of 2 spread over 2 actors, the models' dropout on: the numbers of clients
    trained one by one in this process (tests/test_same_numbers.py)."""
    import wirelessfl
    from tests.test_same_numbers import same_numbers, scenario

    raw = scenario("fedit")
    ref = wirelessfl.run(raw, output=None, compute__batch_clients=False)
    remote = wirelessfl.run(raw, output=None, compute__max_batched_clients=2,
                            set={"compute.backend": "ray", "compute.ray_actors": 2})
    same_numbers(ref, remote, 30)


def test_missing_extra_and_bad_address_are_one_line(tmp_path, capsys, monkeypatch):
    import sys

    from wirelessfl.cli import main

    s = scenario_file(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    assert main(["sweep", s, "--grid", "seed=0", "--backend", "ray", "-q",
                 "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: backend: ray is not installed") and "\n" not in err
    monkeypatch.undo()
    assert main(["sweep", s, "--grid", "seed=0", "--backend", "ray", "-q",
                 "--address", "127.0.0.1:1", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --address: cannot reach") and "\n" not in err
    assert main(["sweep", s, "--grid", "seed=0", "--backend", "ray", "-q",
                 "--resources", "CPU=-1", "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err.startswith("error: --resources:")
