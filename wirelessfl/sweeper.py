"""Sweeps: the cartesian product of overrides, run in parallel worker processes.

``wirelessfl sweep S.yaml --grid method.aggregator=fedit,flora --grid seed=0,1,2``
runs 6 scenarios, one results folder each under the sweep folder, and keeps an
index ``sweep.csv`` (run folder, status, error, wall time, one column per grid key).
Every combination is validated before anything runs, so a mistake in a key or a
plug-in name stops the sweep at once (exit 2). A run that fails while running is
recorded with its error and the others go on. Running the same sweep again skips
the runs that finished (their ``summary.json`` exists) and redoes the rest. A finished
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
    """``["key=v1,v2", ...]`` -> ``[(key, [v1, v2]), ...]``."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        vals = split_values(values)
        if not sep or not key.strip() or not vals:
            raise ScenarioError("--grid", f"expected key.path=v1,v2,..., got {item!r}")
        grid.append((key.strip(), vals))
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


def first_difference(old: Any, new: Any, key: str = "") -> str | None:
    """Dotted key of the first place where two nested config dicts differ, else None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in [*old, *(k for k in new if k not in old)]:
            if k == "output" and not key:
                continue  # where results go is not part of what was run
            diff = first_difference(old.get(k), new.get(k), f"{key}.{k}" if key else str(k))
            if diff:
                return diff
        return None
    return None if old == new else f"{key} (was {old!r}, now {new!r})"


def check_finished(path: Path, sc: Any) -> None:
    """Raise if the finished run in ``path`` was made from another resolved scenario."""
    from wirelessfl.scenario import parse_scenario

    raw = yaml.safe_load((path / "config.yaml").read_text())
    try:  # through the schema, so keys added since (at their defaults) compare equal
        stored = parse_scenario(raw).model_dump(mode="json")
    except ScenarioError:
        stored = raw
    diff = first_difference(stored, sc.model_dump(mode="json"))
    if diff:
        raise OutputError("--out", f"finished run {path} was made with a different scenario "
                          f"at {diff}; pass another --out or delete that run folder")


def _run_one(scenario: str, overrides: list[str], out_dir: str, threads: int) -> dict[str, Any]:
    """Worker: run one combination; never raises."""
    t0 = time.perf_counter()
    try:
        import torch

        torch.set_num_threads(threads)
        from wirelessfl.runner import run_scenario
        from wirelessfl.scenario import load_scenario

        sc = load_scenario(scenario, overrides)
        run_scenario(sc, overwrite=True, progress=False, out_dir=Path(out_dir))
        return {"status": "done", "error": "", "wall_s": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001  (recorded in the index, the sweep goes on)
        msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return {"status": "failed", "error": msg, "wall_s": time.perf_counter() - t0}


def write_index(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)  # atomic: a crash never leaves a half-written index


def run_sweep(scenario: str, grid_items: list[str], sets: list[str], jobs: int,
              out: Path | None, progress: bool = True) -> tuple[Path, list[dict[str, Any]]]:
    """Validate every combination, run the unfinished ones, write ``sweep.csv``."""
    from wirelessfl import build
    from wirelessfl.scenario import load_scenario

    grid = parse_grid(grid_items)
    combos = combinations(grid)
    base = load_scenario(scenario, sets)
    out = out or Path("results") / "sweeps" / base.name
    plans = []
    for combo in combos:
        overrides = [*sets, *(f"{k}={v}" for k, v in combo)]
        sc = load_scenario(scenario, overrides)  # user mistakes stop here, before any run
        build.check(sc)
        path = out / run_name(combo)
        if (path / "summary.json").is_file():
            check_finished(path, sc)
        plans.append((combo, overrides, path))
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
    rows = {}
    todo = []
    for combo, overrides, path in plans:
        row = {"run": path.name, "status": "pending", "error": "", "wall_s": 0.0,
               **{k: v for k, v in combo}}
        if (path / "summary.json").is_file():
            row["status"] = "skipped (done)"
        else:
            todo.append((combo, overrides, path))
        rows[path.name] = row
    index = out / "sweep.csv"
    write_index(index, list(rows.values()))

    def record(path: Path, result: dict[str, Any]) -> None:
        rows[path.name].update(result)
        write_index(index, list(rows.values()))
        if progress:
            print(f"[{sum(r['status'] not in ('pending',) for r in rows.values())}/"
                  f"{len(rows)}] {path.name}: {result['status']} "
                  f"({result['wall_s']:.1f} s){' ' + result['error'] if result['error'] else ''}",
                  flush=True)

    if jobs <= 1:
        for _, overrides, path in todo:
            record(path, _run_one(scenario, overrides, str(path), threads))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(_run_one, scenario, ov, str(p), threads): p
                       for _, ov, p in todo}
            for fut in as_completed(futures):
                record(futures[fut], fut.result())
    return out, list(rows.values())
