"""Sweeps: the cartesian product of overrides, run in parallel worker processes.

``wirelessfl sweep S.yaml --grid method.aggregator=fedit,flora --grid seed=0,1,2``
runs 6 scenarios, one results folder each under the sweep folder, and keeps an
index ``sweep.csv`` (run folder, status, error, wall time, one column per grid key).
Every combination is validated before anything runs, so a mistake in a key or a
plug-in name stops the sweep at once (exit 2). A run that fails while running is
recorded with its error and the others go on. Running the same sweep again skips
the runs that finished (their ``summary.json`` exists and their ``metrics.csv`` holds
every round), resumes the interrupted ones from their checkpoints, and runs the rest.
Worker processes die with the sweep, however it dies (``PR_SET_PDEATHSIG`` on Linux),
and every run folder is locked by its writer, so a rerun never interleaves rows with a
leftover worker. A finished
run whose resolved scenario differs from the one the sweep would run now (the YAML
or a ``--set`` changed) stops the sweep with the first differing key, rather than
mixing stale results into the new sweep or overwriting them.
"""

from __future__ import annotations

import csv
import itertools
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import yaml

from wirelessfl.errors import OutputError, ScenarioError
from wirelessfl.results import finished_summary


def split_values(text: str) -> list[str]:
    """Split ``a,b,[1, 2],{x: 1}`` on top-level commas."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out if v.strip()]


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``["key=v1,v2", ...]`` -> ``[(key, [v1, v2]), ...]``; a key or value given twice
    is an error (it would run the same scenario twice under different names)."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        vals = split_values(values)
        if not sep or not key or not vals:
            raise ScenarioError("--grid", f"expected key.path=v1,v2,..., got {item!r}")
        if any(k == key for k, _ in grid):
            raise ScenarioError("--grid", f"{key} is given twice; list all its values in one "
                                f"--grid {key}=v1,v2,...")
        if len(set(vals)) != len(vals):
            raise ScenarioError("--grid", f"{key} lists a value twice: {', '.join(vals)}")
        if key == "output.dir" or key.startswith("output.dir."):
            raise ScenarioError("--grid", "the sweep gives every run its own folder under "
                                "--out; output.dir cannot vary")
        grid.append((key, vals))
    return grid


def run_name(assignments: list[tuple[str, str]]) -> str:
    """Folder name of a combination: ``aggregator-flora__seed-0`` (safe characters only)."""
    parts = []
    for key, value in assignments:
        v = "".join(c if c.isalnum() or c in ".-" else "-" for c in value)
        parts.append(f"{key.split('.')[-1]}-{v}")
    return "__".join(parts) or "run"


def combinations(grid: list[tuple[str, list[str]]]) -> list[list[tuple[str, str]]]:
    keys = [k for k, _ in grid]
    return [list(zip(keys, vals, strict=True))
            for vals in itertools.product(*[v for _, v in grid])]


def check_finished(path: Path, sc: Any) -> None:
    """Raise if the finished run in ``path`` was made from another resolved scenario.

    Both sides are compared as a run records them: through the schema (keys added
    since compare at their defaults) and with the model's task and LoRA targets made
    explicit (:func:`wirelessfl.build.resolve_model`).
    """
    from wirelessfl.build import resolve_model
    from wirelessfl.scenario import first_difference, parse_scenario

    raw = yaml.safe_load((path / "config.yaml").read_text())
    try:
        stored = parse_scenario(raw).model_dump(mode="json")
    except ScenarioError:
        stored = raw
    diff = first_difference(stored, resolve_model(sc).model_dump(mode="json"))
    if diff:
        raise OutputError("--out", f"finished run {path} was made with a different scenario "
                          f"at {diff}; pass another --out or delete that run folder")


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the kernel kills this process when the sweep process dies
    (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so no worker outlives a killed sweep."""
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the sweep died before the call above
        os._exit(1)


def _run_one(scenario: str, overrides: list[str], out_dir: str, threads: int) -> dict[str, Any]:
    """Worker: run one combination (resuming it from its checkpoint); never raises."""
    t0 = time.perf_counter()
    try:
        import torch

        torch.set_num_threads(threads)
        from wirelessfl.checkpoint import CHECKPOINT
        from wirelessfl.scenario import load_scenario
        from wirelessfl.session import run_scenario

        sc = load_scenario(scenario, overrides)
        path = Path(out_dir)
        resume = (path / CHECKPOINT).is_file() and finished_summary(path) is None
        run_scenario(sc, overwrite=not resume, progress=False, out_dir=path, resume=resume)
        return {"status": "resumed" if resume else "done", "error": "",
                "wall_s": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001  (recorded in the index, the sweep goes on)
        msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return {"status": "failed", "error": msg, "wall_s": time.perf_counter() - t0}


def _summary_wall(summary: dict[str, Any]) -> float:
    """The host time a finished run took (from its summary), seconds."""
    try:
        return float(summary.get("wall_time_s", 0.0))
    except (ValueError, TypeError):
        return 0.0


def sweep_task(scenario_text: str, overrides: list[str], out_dir: str, host: str,
               threads: int, folder: bytes | None,
               cwd: str) -> tuple[dict[str, Any], bytes | None]:
    """One sweep run on a Ray worker; returns (result row, the folder packed or None).

    On the driver's own machine the run writes its folder in place (checkpoints
    survive a killed driver). Elsewhere it runs in a temporary folder seeded with
    ``folder`` (what the driver holds, for a resume) and sends the folder back.
    Relative paths in the scenario (trace or data files) are taken from the driver's
    working directory ``cwd`` when the worker has it; other nodes need the files at
    the same absolute paths.
    """
    import socket
    import tempfile

    from wirelessfl.backends.ray import pack, unpack

    if Path(cwd).is_dir():
        os.chdir(cwd)
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "scenario.yaml"
        scenario.write_text(scenario_text)
        shared = os.environ.get("WIRELESSFL_RAY_SHIP_RESULTS", "") != "1"  # "1": tests
        if shared and socket.gethostname() == host and Path(out_dir).parent.is_dir():
            return _run_one(str(scenario), overrides, out_dir, threads), None
        run = Path(tmp) / "run"
        if folder:
            unpack(folder, run)
        result = _run_one(str(scenario), overrides, str(run), threads)
        return result, pack(run) if run.is_dir() else None


def write_index(path: Path, rows: list[dict[str, Any]]) -> None:
    """``sweep.csv`` (atomic: a crash never leaves a half-written index)."""
    from wirelessfl.results import replacing

    with replacing(path) as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def parse_resources(text: str | None) -> dict[str, float]:
    """``"CPU=2,GPU=0.5"`` -> ``{"CPU": 2.0, "GPU": 0.5}`` (one-line errors)."""
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or key not in ("CPU", "GPU") or not 0 < amount <= 10_000:
            raise ScenarioError("--resources", f"expected CPU=n,GPU=g with positive numbers "
                                f"(fractions allowed), got {item!r}")
        out[key] = amount
    return out


def _sweep_on_ray(scenario: str, todo: list[Any], base: Any, wanted: dict[str, float],
                  address: str | None, record: Any) -> None:
    """Each combination as a Ray task; results recorded as they finish.

    A task whose worker dies is retried once by Ray (resuming from the run's
    checkpoint when the folder is shared); after that the run is marked failed with
    the error and the others go on.
    """
    import socket

    from wirelessfl.backends import ray as ray_backend
    from wirelessfl.checkpoint import CHECKPOINT

    ray = ray_backend.start(address)
    cpus = wanted.get("CPU", float(base.compute.torch_threads or 1))
    gpus = wanted.get("GPU", 1.0 if base.compute.device == "cuda" else 0.0)
    task = ray.remote(sweep_task).options(num_cpus=cpus, num_gpus=gpus,
                                                      max_retries=1, retry_exceptions=False)
    text = Path(scenario).read_text()
    host, cwd = socket.gethostname(), os.getcwd()
    pending = {}
    try:
        for _, overrides, path in todo:
            seed = (ray_backend.pack(path) if (path / CHECKPOINT).is_file() else None)
            ref = task.remote(text, overrides, str(path.resolve()), host,
                              max(1, int(cpus)), seed, cwd)
            pending[ref] = path
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            path = pending.pop(done[0])
            try:
                result, folder = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001  (a worker died twice, a node was lost)
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                result, folder = {"status": "failed", "error": f"{type(exc).__name__}: "
                                  f"{msg}"[:500], "wall_s": 0.0}, None
            if folder:
                ray_backend.unpack(folder, path)
            record(path, result)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        ray_backend.stop()


def run_sweep(scenario: str, grid_items: list[str], sets: list[str], jobs: int,
              out: Path | None, progress: bool = True, backend: str = "local",
              address: str | None = None,
              resources: str | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """Validate every combination, run the unfinished ones, write ``sweep.csv``.

    ``backend="ray"`` runs each combination as a Ray task (``address``: an existing
    cluster; default a local Ray) with ``resources`` (default: ``compute.torch_threads``
    or 1 CPU, and 1 GPU when ``compute.device`` is cuda).
    """
    from wirelessfl import build
    from wirelessfl.scenario import load_scenario

    if backend not in ("local", "ray"):
        raise ScenarioError("--backend", f"unknown backend {backend!r}; available: local, ray")
    wanted = parse_resources(resources)

    grid = parse_grid(grid_items)
    combos = combinations(grid)
    if any(a.split("=", 1)[0].strip() == "output.dir" for a in sets):
        raise ScenarioError("--set", "the sweep gives every run its own folder under --out; "
                            "pass --out instead of output.dir")
    base = load_scenario(scenario, sets)
    out = out or Path("results") / "sweeps" / base.name
    plans = []
    names: dict[str, list[tuple[str, str]]] = {}
    for combo in combos:
        overrides = [*sets, *(f"{k}={v}" for k, v in combo)]
        sc = load_scenario(scenario, overrides)  # user mistakes stop here, before any run
        build.check(sc)
        name = run_name(combo)
        if name in names:
            raise ScenarioError("--grid", f"{names[name]} and {combo} give the same run "
                                f"folder {name!r}; use values that differ in letters or digits")
        names[name] = combo
        path = out / name
        if finished_summary(path) is not None:
            check_finished(path, sc)
        plans.append((combo, overrides, path))
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
    rows = {}
    todo = []
    for combo, overrides, path in plans:
        row = {"run": path.name, "status": "pending", "error": "", "wall_s": 0.0,
               **{k: v for k, v in combo}}
        done = finished_summary(path)
        if done is not None:
            row["status"] = "skipped (done)"
            row["wall_s"] = _summary_wall(done)
        else:
            todo.append((combo, overrides, path))
        rows[path.name] = row
    index = out / "sweep.csv"
    write_index(index, list(rows.values()))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"sweep {out.name}",
               unit="run", disable=not progress, dynamic_ncols=True)

    def record(path: Path, result: dict[str, Any]) -> None:
        rows[path.name].update(result)
        write_index(index, list(rows.values()))
        bar.update(1)
        bar.set_postfix_str(f"{path.name}: {result['status']}", refresh=True)
        if result["error"]:
            bar.write(f"{path.name}: {result['status']}: {result['error']}")

    if backend == "ray" and todo:
        _sweep_on_ray(scenario, todo, base, wanted, address, record)
    elif jobs <= 1:
        for _, overrides, path in todo:
            record(path, _run_one(scenario, overrides, str(path), threads))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                 initializer=_die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_run_one, scenario, ov, str(p), threads): p
                       for _, ov, p in todo}
            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001  (a worker killed from outside)
                    result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                              "wall_s": 0.0}
                record(futures[fut], result)
    bar.close()
    return out, list(rows.values())
