"""Run every aggregator on the same BBC scenario and seed; write a comparison table.

Usage: python scripts/compare_aggregators.py [--scenario scenarios/aggregators.yaml]
           [--methods fedit,ffa,flora,florist,fedtree] [--set key=value ...]

Writes ``results/compare_aggregators/table.{md,csv}``: final and best accuracy,
total uplink and downlink bits, simulated time, and (FedTreeLoRA) personalised
accuracy. Each run lands in ``results/compare_aggregators/<method>/``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from wirelessfl.results import read_csv
from wirelessfl.runner import run_scenario
from wirelessfl.scenario import load_scenario

OPTIONS = {"florist": ["method.aggregator_options.tau=0.9"],
           "fedtree": ["method.aggregator_options.warmup_rounds=2"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/aggregators.yaml")
    ap.add_argument("--methods", default="fedit,ffa,flora,florist,fedtree")
    ap.add_argument("--out", default="results/compare_aggregators")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    out = Path(args.out)
    rows = []
    for m in args.methods.split(","):
        sc = load_scenario(args.scenario, [f"method.aggregator={m}", f"name={m}",
                                           *OPTIONS.get(m, []), *args.overrides])
        t0 = time.perf_counter()
        path, s = run_scenario(sc, overwrite=True, progress=False, out_dir=out / m)
        last = read_csv(path / "metrics.csv")[-1]
        rows.append({
            "method": m,
            "final_accuracy": round(s["final_accuracy"], 4),
            "best_accuracy": round(s["best_accuracy"], 4),
            "personal_accuracy": round(float(last["personal_accuracy"]), 4)
            if last.get("personal_accuracy") else "",
            "uplink_Mbit": round(s["total_uplink_bits"] / 1e6, 2),
            "downlink_Mbit": round(s["total_downlink_bits"] / 1e6, 2),
            "sim_time_s": round(s["sim_time_s"], 1),
            "wall_s": round(time.perf_counter() - t0, 1),
        })
        print(rows[-1], flush=True)
    with (out / "table.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    head = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in r.values()) + " |\n" for r in rows)
    (out / "table.md").write_text(head + body)
    print(head + body)


if __name__ == "__main__":
    main()
