"""Regenerate the figure set of the SOFT/TSFA and FLoRIST papers, in our own setting.

Usage:
    python scripts/reproduce_paper.py            # about 22 min on 2 CPU cores
    python scripts/reproduce_paper.py --full     # more rounds, 3 seeds, more ranks (GPU)
    python scripts/reproduce_paper.py --smoke    # tiny-bert on synthetic data, seconds

Studies (each a sweep under ``<out>/runs/``, resumable: rerunning skips finished runs):

A. controllers: ``ideal`` and ``minmax`` (full rank) against TSFA with SOFT under
   several long-term latency budgets (scenarios/tsfa_vs_baselines.yaml), TSFA's
   offline stage choosing the structural rank from candidates;
B. aggregators: FedIT, FFA-LoRA, FLoRA and FLoRIST at two energy thresholds
   (scenarios/aggregators.yaml).

Figures in ``<out>/`` (PNG and PDF):

- ``accuracy_vs_latency``: test accuracy against simulated time, study A;
- ``latency_vs_budget``: running average round latency against each budget;
- ``communication``: total uplink and final accuracy per method, study A;
- ``rank_choice``: the offline surrogate per candidate rank (chosen marked) and the
  mean share of ranks TSFA sent per round, per budget;
- ``florist_download``: final accuracy against total downlink bits, study B.

The SOFT/TSFA paper's figures could not be read (only its abstract is public), so
these are the figures its abstract describes, in this project's formulation
(docs/tsfa.md); FLoRIST's download comparison follows its Table 5 in kind.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from wirelessfl.analysis import find_runs, group_runs, stack  # noqa: E402
from wirelessfl.cli import guarded  # noqa: E402
from wirelessfl.plotting import _colors, _save, band, finish  # noqa: E402
from wirelessfl.results import read_csv  # noqa: E402
from wirelessfl.scenario import load_scenario  # noqa: E402
from wirelessfl.sweeper import run_sweep  # noqa: E402

SMOKE = ["model.name=tiny-bert", "model.max_length=12", "data.name=synthetic",
         "data.synthetic.num_samples=200", "data.synthetic.num_classes=3",
         "clients.count=3", "clients.local_steps=2", "clients.batch_size=8",
         "clients.learning_rate=0.01", "rounds=2", "data.partition.min_samples=4"]


def scale(args) -> dict:
    if args.full:
        return {"rounds": 20, "seeds": "0,1,2", "budgets": "2.0,3.0,4.5",
                "ranks": "[2, 4, 8, 16]", "taus": "0.8,0.95"}
    if args.smoke:
        return {"rounds": 2, "seeds": "0", "budgets": "0.02,0.05", "ranks": "[1, 2]",
                "taus": "0.8"}
    # 2 CPU cores, under 30 min: 10 runs of 1.5 to 3 min. Six clients instead of ten,
    # with each scenario's uplink scaled by 6/10 so that a client's share (and so the
    # round latency that the budgets are set against) stays that of the scenario.
    # The controllers get 8 rounds: the budget binds on the long-term average, and
    # TSFA's virtual queue starts empty, so round 0 is sent at full rank and the later
    # rounds pay it back; 4 rounds would show mostly that first round.
    return {"rounds": 4, "ctrl_rounds": 8, "seeds": "0", "budgets": "2.0,3.0,4.5",
            "ranks": "[4, 8]", "taus": "0.8,0.95", "clients": 6}


def fewer_clients(scenario: str, count: int | None) -> list[str]:
    """Overrides that run ``scenario`` with ``count`` clients at the same per-client band."""
    if count is None:
        return []
    sc = load_scenario(scenario)
    band_hz = sc.radio.uplink_bandwidth_hz * count / sc.clients.count
    return [f"clients.count={count}", f"radio.uplink_bandwidth_hz={band_hz:.6g}"]


def studies(args, s: dict) -> list[tuple[str, str, list[str], list[str]]]:
    """(folder, scenario, grid, overrides) of every sweep."""
    common = ["output.plots=false", *(SMOKE if args.smoke else [])]
    ctrl = "scenarios/tsfa_vs_baselines.yaml"
    agg = "scenarios/aggregators.yaml"
    ctrl_sets = [*common, f"rounds={s.get('ctrl_rounds', s['rounds'])}",
                 *fewer_clients(ctrl, s.get("clients"))]
    agg_sets = [*common, f"rounds={s['rounds']}", *fewer_clients(agg, s.get("clients"))]
    seeds = f"seed={s['seeds']}"
    return [
        ("controllers_full_rank", ctrl, ["method.controller=ideal,minmax", seeds],
         [*ctrl_sets, "method.controller_options={}"]),
        ("controllers_tsfa", ctrl, [f"controller.latency_budget_s={s['budgets']}", seeds],
         [*ctrl_sets, f"method.controller_options.rank_candidates={s['ranks']}"]),
        ("aggregators", agg, ["method.aggregator=fedit,ffa,flora", seeds], agg_sets),
        ("aggregators_florist", agg, [f"method.aggregator_options.tau={s['taus']}", seeds],
         [*agg_sets, "method.aggregator=florist"]),
    ]


def label(run) -> str:
    m = run.config["method"]
    if m["controller"] == "tsfa":
        return f"TSFA, budget {run.config['controller']['latency_budget_s']:g} s"
    if m["aggregator"] == "florist":
        return f"florist tau={m['aggregator_options'].get('tau', 0.9):g}"
    if m["controller"] in ("ideal", "minmax") and m["aggregator"] == "fedit" and \
            "tsfa_vs" in run.config["name"] + str(run.path):
        return m["controller"]
    return m["aggregator"] if "aggregators" in str(run.path) else m["controller"]


def relabel(groups):
    for g in groups:
        g.label = label(g.runs[0])
    return groups


def fig_accuracy(groups, out: Path) -> list[Path]:
    colors = _colors(groups)
    fig, ax = plt.subplots(figsize=(5.2, 3.5))
    for g in groups:
        band(ax, np.nanmean(stack(g, "sim_time_s"), axis=0), stack(g, "accuracy"),
             colors[g.label], g.label)
    finish(ax, "simulated time (s)", "test accuracy", 7)
    return _save(fig, out, "accuracy_vs_latency")


def fig_latency(groups, out: Path) -> list[Path]:
    colors = _colors(groups)
    fig, ax = plt.subplots(figsize=(6.4, 3.5))
    for g in groups:
        avg = stack(g, "avg_latency_s").mean(axis=0)  # each run's logged running mean
        ax.plot(np.arange(len(avg)), avg, color=colors[g.label], label=g.label)
        b = g.runs[0].config["controller"].get("latency_budget_s")
        if b and g.runs[0].config["method"]["controller"] == "tsfa":
            ax.axhline(b, color=colors[g.label], linestyle=":", linewidth=1)
    finish(ax, "round", "running average latency (s); dotted: budget", 7, outside=True)
    return _save(fig, out, "latency_vs_budget")


def fig_communication(groups, out: Path) -> list[Path]:
    colors = _colors(groups)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    labels = [g.label for g in groups]
    up = [np.mean([np.nansum(r.column("uplink_bits")) / 1e6 for r in g.runs]) for g in groups]
    acc = [np.mean([r.column("accuracy")[-1] for r in g.runs]) for g in groups]
    ax.bar(range(len(groups)), up, color=[colors[lbl] for lbl in labels])
    for i, (u, a) in enumerate(zip(up, acc, strict=True)):
        ax.annotate(f"acc {a:.3f}", (i, u), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)), labels, rotation=25, ha="right", fontsize=7)
    ax.set_ylabel("total uplink (Mbit)")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, out, "communication")


def fig_rank_choice(groups, out: Path) -> list[Path]:
    colors = _colors(groups)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.2))
    plotted = False
    for g in groups:
        run = g.runs[0]
        if run.config["method"]["controller"] != "tsfa":
            continue
        table = run.path / "tsfa_offline.csv"
        if table.is_file():
            rows = [x for x in read_csv(table) if np.isfinite(float(x["surrogate"]))]
            r = [int(x["rank"]) for x in rows]
            j = [float(x["surrogate"]) for x in rows]
            plotted |= bool(rows)
            axes[0].plot(r, j, marker="o", color=colors[g.label], label=g.label)
            for x in rows:
                if float(x["chosen"]) == 1:
                    axes[0].scatter([int(x["rank"])], [float(x["surrogate"])], s=80,
                                    facecolors="none", edgecolors=colors[g.label])
        keep = stack(g, "tsfa_keep_ratio") if "tsfa_keep_ratio" in run.metrics[0] else None
        if keep is not None:
            axes[1].plot(np.arange(keep.shape[1]), keep.mean(axis=0), marker="o", markersize=3,
                         color=colors[g.label], label=g.label)
    if plotted:
        axes[0].set_xscale("log", base=2)
    else:
        axes[0].text(0.5, 0.5, "no candidate fits the budget", ha="center",
                     transform=axes[0].transAxes)
    finish(axes[0], "candidate structural rank r", "offline surrogate J (circle: chosen)", 7)
    finish(axes[1], "round", "share of ranks sent", 7)
    return _save(fig, out, "rank_choice")


def fig_download(groups, out: Path) -> list[Path]:
    colors = _colors(groups)
    fig, ax = plt.subplots(figsize=(5.2, 3.5))
    for g in groups:
        dn = np.mean([np.nansum(r.column("downlink_bits")) / 1e6 for r in g.runs])
        acc = np.mean([r.column("accuracy")[-1] for r in g.runs])
        ax.scatter([dn], [acc], color=colors[g.label], label=g.label, s=30)
    ax.set_xscale("log")
    finish(ax, "total downlink (Mbit)", "final test accuracy", 7)
    return _save(fig, out, "florist_download")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="paper scale (GPU)")
    ap.add_argument("--smoke", action="store_true", help="tiny-bert, seconds (tests)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="results/paper")
    args = ap.parse_args(argv)
    out = Path(args.out)
    t0 = time.perf_counter()
    folders = {}
    for name, scenario, grid, sets in studies(args, scale(args)):
        folders[name], rows = run_sweep(scenario, grid, sets, args.jobs,
                                        out / "runs" / name, progress=True)
        failed = [r["run"] for r in rows if r["status"] == "failed"]
        if failed:
            print(f"reproduce_paper: {len(failed)} run(s) failed ({', '.join(failed)}); see "
                  f"{folders[name] / 'sweep.csv'}. Rerunning redoes only those.",
                  file=sys.stderr)
            return 1
    ctrl = relabel(group_runs(find_runs([folders["controllers_full_rank"],
                                         folders["controllers_tsfa"]])))
    tsfa = [g for g in ctrl if g.runs[0].config["method"]["controller"] == "tsfa"]
    agg = relabel(group_runs(find_runs([folders["aggregators"],
                                        folders["aggregators_florist"]])))
    files = fig_accuracy(ctrl, out) + fig_latency(ctrl, out) + fig_communication(ctrl, out)
    files += fig_rank_choice(tsfa, out) + fig_download(agg, out)
    for f in files:
        print(f)
    print(f"reproduce_paper: {time.perf_counter() - t0:.0f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
