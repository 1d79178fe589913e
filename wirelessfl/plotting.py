"""Figures from results folders (PNG and PDF), for one run, many runs or a sweep.

Runs that differ only by seed form a group, drawn as its mean with a 95 %
Student-t confidence band (and, against simulated time or bits, horizontal bars for
the seeds' spread on the x-axis); every group keeps one colour in every figure, and
``--label`` renames its legend entry.

Figures: the task's quality metric (accuracy, or perplexity for a causal LM) against
simulated time, cumulative uplink bits and round, and any generation metric
(ROUGE-L, exact match) against uplink bits;
round latency against the budget with the running average; the virtual queue;
per-client bandwidth and kept ranks (heatmaps, first run of each group); and a
Gantt timeline of one round (downlink, compute, uplink per client, deadline).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator, ScalarFormatter

from wirelessfl.analysis import Group, Run, find_runs, group_runs, mean_ci, stack
from wirelessfl.results import read_csv


def subplots(*grid: int, figsize: tuple[float, float]) -> tuple[Figure, object]:
    """A new Figure and its axes, without pyplot: the process's backend is never touched
    (inline plots in a notebook keep working) and nothing is left open."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid)

PHASE_COLORS = {"downlink": "#9ecae1", "compute": "#fdae6b", "uplink": "#31a354",
                "outage": "#de2d26"}


def _colors(groups: list[Group]) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10"]
    return {g.label: cmap(i % 10) for i, g in enumerate(sorted(groups, key=lambda g: g.label))}


def _save(fig, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def _bits_unit(max_bits: float) -> tuple[float, str]:
    exp = 3 * int(math.log10(max_bits) // 3) if max_bits > 0 else 0
    exp = min(max(exp, 0), 12)
    return 10.0**exp, {0: "bit", 3: "kbit", 6: "Mbit", 9: "Gbit", 12: "Tbit"}[exp]


def finish(ax, xlabel: str, ylabel: str, fontsize: int = 8, outside: bool = False) -> None:
    """Axis labels (with units), a light grid, integer ticks for rounds, and a legend.

    The legend sits where it hides the least, on a translucent white box so that
    lines under it stay visible but do not cross its text; ``outside`` puts it to
    the right of the axes instead (for figures whose every region carries data).
    """
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if xlabel.startswith("round"):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not ax.get_legend_handles_labels()[0]:
        return
    if outside:
        ax.legend(frameon=False, fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        ax.legend(frameon=True, framealpha=0.85, edgecolor="none", fontsize=fontsize)


#: physical range of each plotted quantity: bands are clipped to it
BOUNDS = {"accuracy": (0.0, 1.0), "rougeL": (0.0, 1.0), "exact_match": (0.0, 1.0),
          "perplexity": (1.0, np.inf), "round_latency_s": (0.0, np.inf),
          "queue_s": (0.0, np.inf)}


def band(ax, x, y, color, label, key: str = "", xs: np.ndarray | None = None):
    """Mean over axis 0 of ``y`` (n_runs, n_points) with its 95 % band when n_runs > 1,
    clipped to the quantity's physical range (:data:`BOUNDS`); the legend states the
    number of runs and the interval. ``xs`` (n_runs, n_points): the runs' own x
    values (simulated time, bits), whose 95 % interval is drawn as horizontal bars
    at the mean points (the spread on the x-axis); ``x`` is then their mean."""
    mean, lo, hi = mean_ci(y)
    ok = ~np.isnan(mean)
    n = y.shape[0]
    if n > 1:
        label = f"{label} (n={n}, 95% CI)"
    ax.plot(x[ok], mean[ok], marker="o", markersize=3, color=color, label=label)
    if n > 1:
        low, high = BOUNDS.get(key, (-np.inf, np.inf))
        ax.fill_between(x[ok], np.clip(lo[ok], low, high), np.clip(hi[ok], low, high),
                        color=color, alpha=0.2, linewidth=0)
        if xs is not None:
            _, x_lo, x_hi = mean_ci(xs)
            err = np.vstack([x[ok] - np.maximum(x_lo[ok], 0.0), x_hi[ok] - x[ok]])
            ax.errorbar(x[ok], mean[ok], xerr=np.maximum(err, 0.0), fmt="none",
                        ecolor=color, alpha=0.5, linewidth=0.8, capsize=1.5)


YLABELS = {"accuracy": "test accuracy", "perplexity": "held-out perplexity",
           "rougeL": "ROUGE-L (F)", "exact_match": "exact match"}
AXIS_LABELS = {**YLABELS, "sim_time_s": "simulated time (s)", "round": "round",
               "cum_uplink_bits": "cumulative uplink (bit)", "queue_s": "virtual queue Q(t) (s)"}
UNITS = {"_s": "s", "_bits": "bit", "_hz": "Hz", "_j": "J", "_db": "dB", "_dbm": "dBm",
         "_m": "m"}


def axis_label(column: str) -> str:
    """A metrics column as an axis label with its unit: ``round_latency_s`` ->
    ``round latency (s)``."""
    if column in AXIS_LABELS:
        return AXIS_LABELS[column]
    for suffix, unit in sorted(UNITS.items(), key=lambda kv: -len(kv[0])):
        if column.endswith(suffix):
            return f"{column[: -len(suffix)].replace('_', ' ')} ({unit})"
    return column.replace("_", " ")


def plot_quality(groups: list[Group], out: Path) -> list[Path]:
    """The quality metric against simulated time, cumulative uplink bits and round
    (``accuracy_vs_latency.png``, ...); generation metrics against uplink bits."""
    colors = _colors(groups)
    max_bits = max(float(np.nanmax(stack(g, "cum_uplink_bits"))) for g in groups)
    scale, unit = _bits_unit(max_bits)
    metric = groups[0].runs[0].quality
    extra = [m for m in ("rougeL", "exact_match") if m in groups[0].runs[0].metrics[0]]
    paths = []
    figures = [(metric, "latency", "sim_time_s", "simulated time (s)", 1.0),
               (metric, "uplink_bits", "cum_uplink_bits", f"cumulative uplink ({unit})", scale),
               (metric, "round", "round", "round", 1.0)]
    figures += [(m, "uplink_bits", "cum_uplink_bits", f"cumulative uplink ({unit})", scale)
                for m in extra]
    for y, stem, key, xlabel, div in figures:
        fig, ax = subplots(figsize=(5.0, 3.4))
        for g in groups:
            xs = stack(g, key) / div
            x = np.nanmean(xs, axis=0)
            band(ax, x, stack(g, y), colors[g.label], g.label, y,
                 xs=None if key == "round" else xs)
        finish(ax, xlabel, YLABELS.get(y, y))
        if y == "perplexity":
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(ScalarFormatter())
        paths += _save(fig, out, f"{y}_vs_{stem}")
    return paths


def plot_latency(groups: list[Group], out: Path) -> list[Path]:
    """Round latency (solid), its running average (dashed) and the budget; the queue."""
    colors = _colors(groups)
    fig, ax = subplots(figsize=(5.0, 3.4))
    budgets = set()
    for g in groups:
        lat = stack(g, "round_latency_s")
        x = np.arange(lat.shape[1])
        band(ax, x, lat, colors[g.label], g.label, "round_latency_s")
        avg = np.cumsum(lat, axis=1) / (x + 1)
        ax.plot(x, avg.mean(axis=0), linestyle="--", color=colors[g.label], linewidth=1)
        b = g.runs[0].config.get("controller", {}).get("latency_budget_s")
        if b:
            budgets.add(float(b))
    for b in sorted(budgets):
        ax.axhline(b, color="k", linestyle=":", linewidth=1)
        ax.annotate(f"budget {b:g} s", (0, b), textcoords="offset points", xytext=(2, 3),
                    fontsize=7)
    finish(ax, "round", "round latency (s); dashed: running average")
    paths = _save(fig, out, "latency_vs_budget")
    queued = [g for g in groups if _uses_queue(g.runs[0])]
    if not queued:  # no controller here keeps a latency queue
        return paths
    fig, ax = subplots(figsize=(5.0, 3.0))
    for g in queued:
        q = stack(g, "queue_s")
        band(ax, np.arange(q.shape[1]), q, colors[g.label], g.label, "queue_s")
    finish(ax, "round", "virtual queue Q(t) (s)")
    return paths + _save(fig, out, "queue")


def _uses_queue(run: Run) -> bool:
    """Whether the run's controller decides with the long-term latency queue."""
    from wirelessfl.control import CONTROLLERS

    name = (run.config.get("method") or {}).get("controller", "")
    try:
        return bool(CONTROLLERS.get(name).uses_queue)
    except Exception:  # a plug-in that is not importable here: draw the queue anyway
        return True


#: most client rows an allocation heatmap draws (the most often selected ones)
MAX_CLIENT_ROWS = 1000


def _client_matrix(run: Run, key: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``key`` per client (rows) and round (columns), the clients each row shows, and
    how many clients were ever selected. Rows are the selected clients in index order:
    all of them (every client of a small population), or the
    :data:`MAX_CLIENT_ROWS` selected most often."""
    rows = read_csv(run.path / "clients.csv")
    n_rounds = 1 + max(int(r["round"]) for r in rows)
    ids, counts = np.unique([int(r["client"]) for r in rows], return_counts=True)
    total = len(ids)
    if total > MAX_CLIENT_ROWS:
        ids = np.sort(ids[np.argsort(-counts, kind="stable")[:MAX_CLIENT_ROWS]])
    row_of = {int(k): i for i, k in enumerate(ids)}
    m = np.full((len(ids), n_rounds), np.nan)
    for r in rows:
        i = row_of.get(int(r["client"]))
        if i is not None:
            m[i, int(r["round"])] = float(r[key])
    return m, ids, total


def plot_allocations(groups: list[Group], out: Path) -> list[Path]:
    """Bandwidth (MHz) and kept ranks per client and round, first run of each group."""
    paths = []
    for g in groups:
        run = g.runs[0]
        fig, axes = subplots(1, 2, figsize=(8.0, 3.2))
        for ax, key, title, scale in ((axes[0], "bandwidth_hz", "bandwidth (MHz)", 1e6),
                                      (axes[1], "keep_ranks", "ranks sent", 1.0)):
            m, ids, total = _client_matrix(run, key)
            im = ax.imshow(m / scale, aspect="auto", origin="lower", cmap="viridis",
                           interpolation="nearest")
            ax.set_xlabel("round")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            if np.array_equal(ids, np.arange(len(ids))):
                ax.set_ylabel("client")
            else:  # a large population: the rows are the selected clients, by index
                ax.yaxis.set_major_formatter(FuncFormatter(
                    lambda y, _, ids=ids: f"{ids[int(y)]}" if 0 <= int(y) < len(ids) else ""))
                shown = (f"{len(ids)} selected most often of {total}" if total > len(ids)
                         else f"the {total} selected")
                ax.set_ylabel(f"client ({shown})", fontsize=8)
            ax.set_title(title, fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03)
        fig.subplots_adjust(wspace=0.6)
        fig.suptitle(g.label, fontsize=9)
        stem = "allocation" if len(groups) == 1 else f"allocation_{_slug(g.label)}"
        paths += _save(fig, out, stem)
    return paths


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)[:60]


def plot_gantt(run: Run, out: Path, round_index: int | None = None) -> list[Path]:
    """Per-client phases of one round (default: the middle one), with the deadline."""
    events = [json.loads(line) for line in (run.path / "events.jsonl").read_text().splitlines()
              if line.strip()]
    timelines = {e["round"]: e["phases"] for e in events if e.get("event") == "timeline"}
    if not timelines:
        return []
    t = round_index if round_index is not None else sorted(timelines)[len(timelines) // 2]
    phases = timelines.get(t, [])
    clients = sorted({p["client"] for p in phases})
    fig, ax = subplots(figsize=(6.0, 0.35 * len(clients) + 1.2))
    start = min((p["start_s"] for p in phases), default=0.0)
    for p in phases:
        y = clients.index(p["client"])
        ax.barh(y, p["end_s"] - p["start_s"], left=p["start_s"] - start,
                color=PHASE_COLORS.get(p["phase"], "grey"), edgecolor="none", height=0.7)
    deadline = run.config.get("sim", {}).get("deadline_s")
    if deadline:
        ax.axvline(deadline, color="k", linestyle=":", linewidth=1, label="deadline")
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in PHASE_COLORS.values()]
    ax.legend(handles, list(PHASE_COLORS), frameon=False, fontsize=7, ncol=4,
              loc="upper center", bbox_to_anchor=(0.5, -0.25))
    ax.set_yticks(range(len(clients)), [str(c) for c in clients])
    ax.set_ylabel("client")
    ax.set_xlabel(f"time since the start of round {t} (s)")
    return _save(fig, out, "round_timeline")


def relabel(groups: list[Group], labels: dict[str, str]) -> list[Group]:
    """Groups with legend labels renamed: each key is a group's whole label or one of
    its ``key=value`` parts (``controller=tsfa``); ValueError names a key that matches
    no group."""
    out = []
    used: set[str] = set()
    for g in groups:
        parts = {g.label, *g.label.split(", ")}
        hits = [spec for spec in labels if spec in parts]
        used.update(hits)
        out.append(Group(" ".join(labels[h] for h in hits), g.runs) if hits else g)
    missing = [spec for spec in labels if spec not in used]
    if missing:
        raise ValueError(f"{missing[0]!r} matches no group; the groups are: "
                         + "; ".join(g.label for g in groups))
    return out


def plot_runs(paths: list[Path], out: Path, round_index: int | None = None,
              labels: dict[str, str] | None = None) -> list[Path]:
    """Every figure for the given runs (or sweep folders); ``labels`` renames legend
    entries (:func:`relabel`)."""
    runs = find_runs(paths)
    groups = group_runs(runs)
    if labels:
        groups = relabel(groups, labels)
    files = plot_quality(groups, out) + plot_latency(groups, out)
    files += plot_allocations(groups, out)
    return files + plot_gantt(runs[0], out, round_index)


def plot_run(run: Path) -> list[Path]:
    """The figures of one run, into ``run/plots``."""
    return plot_runs([run], run / "plots")
