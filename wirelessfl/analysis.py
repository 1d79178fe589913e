"""Reading results folders back: runs, groups of seeds, confidence bands, summaries.

A *group* is a set of runs whose resolved configurations differ only in ``seed``
(and in their name and output folder): the seeds of one method. Groups are labelled
by the keys whose values differ between groups (``aggregator=flora``), so any
number of methods can be compared.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import stats

from wirelessfl.errors import WirelessFLError
from wirelessfl.results import finished_summary, read_csv

IGNORED_KEYS = {"seed", "name", "output.dir", "output.plots", "output.save_adapter"}


@dataclass
class Run:
    """One finished (or partial) run folder."""

    path: Path
    config: dict[str, Any]
    metrics: list[dict[str, str]]
    summary: dict[str, Any] = field(default_factory=dict)

    def column(self, key: str) -> np.ndarray:
        """A metrics.csv column as floats (empty cells: NaN), shape (rounds,)."""
        return np.array([float(r[key]) if r.get(key, "") not in ("", None) else np.nan
                         for r in self.metrics])

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def quality(self) -> str:
        """The metric the run's task is judged by (``accuracy``, ``perplexity``)."""
        q = self.summary.get("quality_metric")
        if q:
            return str(q)
        return "accuracy" if not self.metrics or "accuracy" in self.metrics[0] else "perplexity"


#: quality metric -> whether higher is better
HIGHER_IS_BETTER = {"accuracy": True, "perplexity": False, "rougeL": True,
                    "exact_match": True}


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> ``{"a.b.c": value}`` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load_run(path: Path) -> Run:
    path = Path(path)
    if not (path / "metrics.csv").is_file() or not (path / "config.yaml").is_file():
        raise WirelessFLError("runs", f"{str(path)!r} is not a results folder "
                                      "(no metrics.csv/config.yaml)")
    return Run(path, yaml.safe_load((path / "config.yaml").read_text()),
               read_csv(path / "metrics.csv"), finished_summary(path) or {})


def find_runs(paths: list[Path], include_unfinished: bool = False) -> list[Run]:
    """Runs named directly, or every run inside a sweep folder (``sweep.csv``).

    Unfinished runs (no ``summary.json``: killed, failed or still running) are left out
    with a warning naming them, unless ``include_unfinished``: averaging 70 rounds of a
    killed run with finished 300-round runs would mislead.
    """
    runs = []
    for p in map(Path, paths):
        if (p / "metrics.csv").is_file():
            runs.append(load_run(p))
        elif p.is_dir():
            inner = sorted(q.parent for q in p.glob("*/metrics.csv"))
            if not inner:
                raise WirelessFLError("runs", f"{str(p)!r} holds no results folders")
            runs.extend(load_run(q) for q in inner)
        else:
            raise WirelessFLError("runs", f"{str(p)!r} does not exist")
    unfinished = [r for r in runs if not r.summary]
    if unfinished and not include_unfinished:
        names = ", ".join(str(r.path) for r in unfinished[:3])
        more = f" and {len(unfinished) - 3} more" if len(unfinished) > 3 else ""
        warnings.warn(f"left out {len(unfinished)} unfinished run(s) (no summary.json): "
                      f"{names}{more}; resume them with wirelessfl run ... --resume",
                      stacklevel=2)
        runs = [r for r in runs if r.summary]
        if not runs:
            raise WirelessFLError("runs", "every run named is unfinished (no summary.json)")
    return runs


@dataclass
class Group:
    """Runs that differ only by seed."""

    label: str
    runs: list[Run]


def group_runs(runs: list[Run]) -> list[Group]:
    """Group runs by their configuration without the seed; label by differing keys.

    The label names, for each group, the differing keys that the group sets
    (``controller=tsfa, latency_budget_s=2.0``): a key that is unset (None, or an
    empty mapping) in this group is left out of its label, so options that only
    another method has do not clutter it. Groups are told apart by the values
    themselves, never by the label alone.
    """
    flat = [{k: v for k, v in flatten(r.config).items() if k not in IGNORED_KEYS} for r in runs]
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    groups: dict[str, tuple[str, list[Run]]] = {}
    for run, f in zip(runs, flat, strict=True):
        ident = json.dumps([f.get(k) for k in differing], sort_keys=True)
        label = ", ".join(f"{k.split('.')[-1]}={_short(f.get(k))}" for k in differing
                          if f.get(k) not in (None, {}))
        groups.setdefault(ident, (label or run.config.get("name", run.path.name), []))
        groups[ident][1].append(run)
    labels = [label for label, _ in groups.values()]
    return [Group(label if labels.count(label) == 1 else f"{label} ({i})",
                  sorted(rs, key=lambda r: r.seed))
            for i, (label, rs) in enumerate(groups.values())]


def _short(v: Any) -> str:
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else str(v)


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """Mean and two-sided Student-t confidence interval over axis 0.

    ``values`` has shape (n_seeds, n_points); NaNs are ignored per point. With one
    seed the interval is the mean itself. Returns (mean, low, high), each (n_points,).
    """
    v = np.asarray(values, dtype=float)
    n = np.sum(~np.isnan(v), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        mean = np.nanmean(v, axis=0)
        sd = np.nanstd(v, axis=0, ddof=1) if v.shape[0] > 1 else np.zeros(v.shape[1])
        half = np.where(n > 1, stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
                        * sd / np.sqrt(n), 0.0)
    half = np.nan_to_num(half)
    return mean, mean - half, mean + half


def stack(group: Group, key: str) -> np.ndarray:
    """A metric of every run in the group, (n_runs, min rounds)."""
    cols = [r.column(key) for r in group.runs]
    n = min(len(c) for c in cols)
    return np.stack([c[:n] for c in cols])


def time_to_target(run: Run, target: float) -> float:
    """Simulated time at the first evaluated round whose quality reaches ``target``:
    accuracy at or above it, perplexity at or below it (NaN if never)."""
    q, t = run.column(run.quality), run.column("sim_time_s")
    hit = np.flatnonzero(q >= target if HIGHER_IS_BETTER.get(run.quality, True)
                         else q <= target)
    return float(t[hit[0]]) if hit.size else math.nan


def summarize(groups: list[Group], target: float | None = None) -> list[dict[str, Any]]:
    """One row per group: mean and std across seeds of the headline numbers.

    A seed that never reaches ``target`` has no time to target: the mean and std of
    ``time_to_<target>_s`` are over the seeds that reach it, and the column
    ``reached_<target>`` says how many did (``"2/3"``), so a fast mean over one lucky
    seed cannot pass for the group's.
    """
    rows = []
    for g in groups:
        per_run = []
        for r in g.runs:
            q = r.quality
            acc = r.column(q)
            best = np.nanmax if HIGHER_IS_BETTER.get(q, True) else np.nanmin
            lat = r.column("round_latency_s")
            budget = r.config.get("controller", {}).get("latency_budget_s")
            vals = {
                f"final_{q}": float(acc[~np.isnan(acc)][-1]) if np.any(~np.isnan(acc))
                else math.nan,
                f"best_{q}": float(best(acc)) if np.any(~np.isnan(acc)) else math.nan,
                "uplink_Mbit": float(np.nansum(r.column("uplink_bits"))) / 1e6,
                "downlink_Mbit": float(np.nansum(r.column("downlink_bits"))) / 1e6,
                "sim_time_s": float(r.column("sim_time_s")[-1]),
                "avg_latency_s": float(np.nanmean(lat)),
                "latency_over_budget": float(np.nanmean(lat)) / budget - 1 if budget
                else math.nan,
            }
            if target is not None:
                vals[f"time_to_{target:g}_s"] = time_to_target(r, target)
            per_run.append(vals)
        row: dict[str, Any] = {"group": g.label, "seeds": len(g.runs)}
        for k in per_run[0]:
            x = np.array([v[k] for v in per_run], dtype=float)
            ok = x[~np.isnan(x)]
            row[k] = float(ok.mean()) if ok.size else math.nan
            row[f"{k}_std"] = float(ok.std(ddof=1)) if ok.size > 1 else 0.0
        if target is not None:
            reached = sum(not math.isnan(v[f"time_to_{target:g}_s"]) for v in per_run)
            row[f"reached_{target:g}"] = f"{reached}/{len(per_run)}"
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table with ``mean ± std`` cells (the union of the rows' columns)."""
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if not k.endswith("_std")]
    head = "| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n"
    lines = []
    for r in rows:
        cells = []
        for k in keys:
            v = r.get(k, math.nan)
            if isinstance(v, float):
                std = r.get(f"{k}_std", 0.0)
                cells.append("n/a" if math.isnan(v) else
                             f"{v:.4g} ± {std:.2g}" if r["seeds"] > 1 else f"{v:.4g}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"
