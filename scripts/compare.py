"""Run one scenario under several values of one key (same seed); write a comparison table.

Usage:
    python scripts/compare.py --preset aggregators
    python scripts/compare.py --preset controllers
    python scripts/compare.py SCENARIO --key method.controller --values equal,tsfa
                              [--set key=value ...] [--out DIR]

Every run uses the same seed, so the channel, placement and data draws are the
same (common random numbers) and only the compared choice differs. Writes
``<out>/table.{md,csv}`` with final and best accuracy, personalised accuracy (when
logged), uplink and downlink bits, simulated time, the average round latency and
the latency budget, and each run's folder ``<out>/<value>/``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from wirelessfl.cli import guarded
from wirelessfl.results import read_csv
from wirelessfl.scenario import load_scenario
from wirelessfl.session import run_scenario

PRESETS = {
    "aggregators": {
        "scenario": "scenarios/aggregators.yaml", "key": "method.aggregator",
        "values": "fedit,ffa,flora,florist,fedtree", "out": "results/compare_aggregators",
        "extra": {"florist": ["method.aggregator_options.tau=0.9"],
                  "fedtree": ["method.aggregator_options.warmup_rounds=2"]},
    },
    "controllers": {
        "scenario": "scenarios/tsfa_vs_baselines.yaml", "key": "method.controller",
        "values": "ideal,equal,minmax,fixed,greedy,tsfa", "out": "results/tsfa_vs_baselines",
        "extra": {c: ["method.controller_options={}"]
                  for c in ("ideal", "equal", "minmax", "fixed", "greedy")},
    },
}


def row(value: str, path: Path, s: dict, wall: float) -> dict:
    last = read_csv(path / "metrics.csv")[-1]
    budget = s.get("latency_budget_s")
    return {
        "value": value,
        "final_accuracy": round(s["final_accuracy"], 4),
        "best_accuracy": round(s["best_accuracy"], 4),
        "personal_accuracy": round(float(last["personal_accuracy"]), 4)
        if last.get("personal_accuracy") else "",
        "uplink_Mbit": round(s["total_uplink_bits"] / 1e6, 2),
        "downlink_Mbit": round(s["total_downlink_bits"] / 1e6, 2),
        "sim_time_s": round(s["sim_time_s"], 1),
        "avg_latency_s": round(s["avg_round_latency_s"], 3),
        "budget_s": budget if budget is not None else "",
        "avg_over_budget": round(s["avg_round_latency_s"] / budget - 1, 4) if budget else "",
        "wall_s": round(wall, 1),
    }


def write_table(rows: list[dict], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "table.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    text = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    text += "".join("| " + " | ".join(str(v) for v in r.values()) + " |\n" for r in rows)
    (out / "table.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?")
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--key")
    ap.add_argument("--values")
    ap.add_argument("--out")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    preset = PRESETS.get(args.preset, {})
    scenario = args.scenario or preset.get("scenario")
    key, values = args.key or preset.get("key"), args.values or preset.get("values")
    if not (scenario and key and values):
        ap.error("give --preset, or SCENARIO with --key and --values")
    out = Path(args.out or preset.get("out") or f"results/compare_{key.replace('.', '_')}")
    rows = []
    for value in values.split(","):
        sc = load_scenario(scenario, [f"{key}={value}", f"name={value}",
                                      *preset.get("extra", {}).get(value, []), *args.overrides])
        t0 = time.perf_counter()
        path, s = run_scenario(sc, overwrite=True, progress=False, out_dir=out / value)
        rows.append(row(value, path, s, time.perf_counter() - t0))
        print(rows[-1], flush=True)
    print(write_table(rows, out))
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
