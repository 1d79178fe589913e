"""Figures from results folders: accuracy against simulated latency and uplink bits."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from wirelessfl.results import read_csv  # noqa: E402


def _series(run: Path, x_key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in read_csv(run / "metrics.csv"):
        if row.get("accuracy", "") not in ("", None):
            xs.append(float(row[x_key]))
            ys.append(float(row["accuracy"]))
    return xs, ys


def _label(run: Path) -> str:
    return run.name


def _save(fig, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def plot_accuracy(runs: list[Path], out: Path, x_key: str, xlabel: str, stem: str,
                  xscale: float = 1.0) -> list[Path]:
    """Test accuracy of each run against a cumulative x quantity."""
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for run in runs:
        xs, ys = _series(run, x_key)
        ax.plot([x / xscale for x in xs], ys, marker="o", markersize=3, label=_label(run))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, out, stem)


def plot_runs(runs: list[Path], out: Path) -> list[Path]:
    """Overlay runs: accuracy vs simulated time (s) and vs cumulative uplink bits."""
    paths = plot_accuracy(runs, out, "sim_time_s", "simulated time (s)", "accuracy_vs_latency")
    max_bits = max((max(_series(r, "cum_uplink_bits")[0], default=0) for r in runs), default=0)
    exp = 3 * int(math.log10(max_bits) // 3) if max_bits > 0 else 0
    unit = {0: "bit", 3: "kbit", 6: "Mbit", 9: "Gbit", 12: "Tbit"}.get(exp, f"1e{exp} bit")
    paths += plot_accuracy(runs, out, "cum_uplink_bits", f"cumulative uplink ({unit})",
                           "accuracy_vs_uplink_bits", xscale=10.0**exp)
    return paths


def plot_run(run: Path) -> list[Path]:
    """The figures of one run, into ``run/plots``."""
    return plot_runs([run], run / "plots")
