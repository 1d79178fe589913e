"""TSFA against the baselines across budgets, seeds and channels (docs/tsfa.md's study).

    python scripts/tsfa_study.py [--rounds 30] [--seeds 0,1,2] [--jobs 2]
                                 [--v-sweep 1,16] [--out results/tsfa_study]

On ``scenarios/smoke.yaml`` with SOFT training for every controller (so accuracy
differences come from the decisions alone), per channel and seed: ``equal`` and
``minmax`` (full rank), ``fixed`` (half the ranks, equal bandwidth), and for each
budget (50 %, 70 %, 90 % of equal's mean round latency for that channel and seed)
``greedy`` (the budget as a per-round deadline) and ``tsfa``. Channels: fast block
Rayleigh (10 ms blocks), block Rician K = 5 (10 ms) and slow Jakes (f_d = 2 Hz,
coherence 0.21 s). At the 70 % budget TSFA also runs with each Lyapunov weight of
``--v-sweep`` (rows ``tsfa_v<v>``; the default v = 4 is the ``tsfa`` row). Each run
uses one torch thread (two runs at a time on two cores would otherwise spin-wait on
each other). Writes ``study.csv`` (one row per
run) and ``study.md`` (mean and 95 % t-interval over seeds) to ``--out``; finished
runs are reused.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import stats

CHANNELS = {
    "rayleigh_fast": '{"model":"rayleigh","coherence_time_s":0.01}',
    "rician_k5": '{"model":"rician","coherence_time_s":0.01,"k_factor":5}',
    "jakes_slow": '{"model":"jakes","max_doppler_hz":2}',
}
SHARES = (0.5, 0.7, 0.9)


def run(out: Path, rounds: int, seed: int, fading: str, controller: str,
        budget: float | None, extra: list[str]) -> dict:
    if not (out / "summary.json").exists():
        cmd = [sys.executable, "-m", "wirelessfl.cli", "run", "scenarios/smoke.yaml", "--quiet",
               "--overwrite", "--out", str(out), "--set", f"rounds={rounds}",
               "--set", f"seed={seed}", "--set", f"channel.fading={fading}",
               "--set", "method.compressor=soft", "--set", f"method.controller={controller}",
               "--set", "output.plots=false", "--set", "output.save_adapter=false",
               "--set", "compute.torch_threads=1", *extra]
        if budget is not None:
            cmd += ["--set", f"controller.latency_budget_s={budget}"]
        subprocess.run(cmd, check=True, capture_output=True)
    return json.loads((out / "summary.json").read_text())


def accuracy_at(path: Path, t_s: float) -> float:
    """The last evaluated accuracy at or before simulated time ``t_s``."""
    acc = float("nan")
    with (path / "metrics.csv").open() as fh:
        for row in csv.DictReader(fh):
            if float(row["sim_time_s"]) > t_s:
                break
            if row["accuracy"] not in ("", "nan"):
                acc = float(row["accuracy"])
    return acc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--v-sweep", default="1,16", help="TSFA weights v also run at 70 %%")
    ap.add_argument("--out", type=Path, default=Path("results/tsfa_study"))
    args = ap.parse_args(argv)
    sweep = [float(v) for v in args.v_sweep.split(",") if v]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[dict] = []

    def cell(ch: str, seed: int) -> list[dict]:
        fading = CHANNELS[ch]
        base = args.out / ch / f"seed{seed}"
        eq = run(base / "equal", args.rounds, seed, fading, "equal", None, [])
        out = [{"channel": ch, "seed": seed, "controller": "equal", "share": "", "budget_s":
                "", "run": base / "equal"}]
        for name, extra in (("minmax", []), ("fixed", ["--set",
                                                        "method.controller_options.keep_ratio=0.5"])):
            run(base / name, args.rounds, seed, fading, name, None, extra)
            out.append({"channel": ch, "seed": seed, "controller": name, "share": "",
                        "budget_s": "", "run": base / name})
        for share in SHARES:
            budget = share * eq["avg_round_latency_s"]
            for name in ("greedy", "tsfa"):
                path = base / f"{name}_{share}"
                run(path, args.rounds, seed, fading, name, budget, [])
                out.append({"channel": ch, "seed": seed, "controller": name, "share": share,
                            "budget_s": budget, "run": path})
            for v in sweep if share == 0.7 else ():
                name = f"tsfa_v{v:g}"
                path = base / f"{name}_{share}"
                run(path, args.rounds, seed, fading, "tsfa", budget,
                    ["--set", f"method.controller_options.v={v}"])
                out.append({"channel": ch, "seed": seed, "controller": name, "share": share,
                            "budget_s": budget, "run": path})
        return out

    with ThreadPoolExecutor(args.jobs) as pool:
        for part in pool.map(lambda cs: cell(*cs), [(c, s) for c in CHANNELS for s in seeds]):
            rows += part
    # accuracy at equal simulated time: the earliest end among the runs of a cell
    for ch in CHANNELS:
        for seed in seeds:
            mine = [r for r in rows if r["channel"] == ch and r["seed"] == seed]
            t_common = min(json.loads((r["run"] / "summary.json").read_text())["sim_time_s"]
                           for r in mine)
            for r in mine:
                s = json.loads((r["run"] / "summary.json").read_text())
                r.update(avg_latency_s=s["avg_round_latency_s"],
                         final_accuracy=s["final_accuracy"],
                         uplink_mbit=s["total_uplink_bits"] / 1e6,
                         common_time_s=t_common,
                         accuracy_at_common_time=accuracy_at(r["run"], t_common),
                         over_budget=(s["avg_round_latency_s"] / r["budget_s"] - 1
                                      if r["budget_s"] != "" else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    keys = ["channel", "seed", "controller", "share", "budget_s", "avg_latency_s",
            "over_budget", "final_accuracy", "accuracy_at_common_time", "common_time_s",
            "uplink_mbit"]
    with (args.out / "study.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    def ci(vals: list[float]) -> str:
        v = np.array(vals, dtype=float)
        if len(v) < 2:
            return f"{v.mean():.4g}"
        half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
        return f"{v.mean():.4g} ± {half:.2g}"

    lines = ["| channel | controller | budget share | avg latency (s) | vs budget | "
             "accuracy at common time | final accuracy | uplink (Mbit) |",
             "|---|---|---|---|---|---|---|---|"]
    for ch in CHANNELS:
        groups = dict.fromkeys((r["controller"], r["share"]) for r in rows if r["channel"] == ch
                               and not r["controller"].startswith("tsfa_v"))
        for name, share in groups:
            g = [r for r in rows if r["channel"] == ch and r["controller"] == name
                 and r["share"] == share]
            vs = ci([100 * r["over_budget"] for r in g]) + " %" if share != "" else "—"
            lines.append(f"| {ch} | {name} | {share or '—'} | "
                         f"{ci([r['avg_latency_s'] for r in g])} | {vs} | "
                         f"{ci([r['accuracy_at_common_time'] for r in g])} | "
                         f"{ci([r['final_accuracy'] for r in g])} | "
                         f"{ci([r['uplink_mbit'] for r in g])} |")
    (args.out / "study.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
