"""Scaling benchmark: one round's cost and each phase's share at 100 and 1,000 clients.

tiny-bert, one local step of batch 16 per client, SOFT sparsification under TSFA,
FedIT aggregation (its covariance metric included), block Rayleigh fading. Each size
runs in its own process (1 torch thread) so that its peak memory is its own. Phases
are read from a profile of the measured rounds (cumulative time of the function that
does each phase). Writes ``results/bench/scale.json``.

Usage: python scripts/bench_scale.py [--clients 100,1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

PHASES = {  # phase -> (module path suffix, function name)
    "train": ("runner.py", "train"),
    "error_profiles": ("base.py", "error_profiles"),
    "decide": ("tsfa.py", "online"),
    "compress": ("soft.py", "compress"),
    "timeline": ("timeline.py", "simulate_round"),
    "aggregate": ("fedit.py", "aggregate"),
    "evaluate": ("client.py", "evaluate"),
    "records": ("records.py", "client_rows"),
}


def one(k: int, rounds: int) -> dict:
    import cProfile
    import pstats
    import resource
    import time

    import torch

    torch.set_num_threads(1)
    from wirelessfl.build import build_components
    from wirelessfl.scenario import parse_scenario
    from wirelessfl.session import play

    sc = parse_scenario({
        "name": f"scale-{k}", "seed": 0, "rounds": rounds + 1,
        "clients": {"count": k, "local_steps": 1, "batch_size": 16, "device": "jetson"},
        "radio": {"uplink_bandwidth_hz": 2e5 * k},
        "channel": {"fading": {"model": "rayleigh", "coherence_time_s": 0.01}},
        "model": {"name": "tiny-bert", "max_length": 16, "lora": {"rank": 8, "alpha": 16}},
        "data": {"name": "synthetic", "synthetic": {"num_samples": 40 * k},
                 "partition": {"scheme": "iid"}},
        "method": {"aggregator": "fedit", "compressor": "soft", "controller": "tsfa"},
        "controller": {"latency_budget_s": 1.0},
        "eval": {"personal_examples": 10},
        "output": {"plots": False, "save_adapter": False},
    })
    t0 = time.perf_counter()
    c = build_components(sc)
    build_s = time.perf_counter() - t0
    idle_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
    rows = []

    class Timer:
        def on_start(self, s):
            self.t = time.perf_counter()

        def on_round(self, r):
            now = time.perf_counter()
            rows.append(now - self.t)
            self.t = now
            if r.round == 0:  # round 0 (warm-up, cvxpy-free but first-touch) not profiled
                prof.enable()

        def on_end(self, e):
            prof.disable()

    prof = cProfile.Profile()
    play(c, [Timer()])
    stats = pstats.Stats(prof).stats
    phases = {}
    for name, (path, func) in PHASES.items():
        phases[name] = sum(v[3] for (f, _, fn), v in stats.items()
                           if f.endswith(path) and fn == func)
    per_round = sum(rows[1:]) / max(len(rows) - 1, 1)
    total = sum(phases.values()) / max(len(rows) - 1, 1)
    return {"clients": k, "round_s": per_round, "build_s": build_s,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_build_mib": idle_rss,
            "phase_share": {n: v / max(len(rows) - 1, 1) / per_round
                            for n, v in phases.items()},
            "other_share": max(0.0, 1 - total / per_round)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="100,1000")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.rounds)))
        return
    res = {}
    for k in (int(x) for x in args.clients.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(k), "--rounds",
                              str(args.rounds)], capture_output=True, text=True, check=True)
        res[str(k)] = json.loads(out.stdout.strip().splitlines()[-1])
        r = res[str(k)]
        print(f"{k} clients: {r['round_s']:.2f} s per round, peak {r['peak_rss_mib']:.0f} MiB; "
              + ", ".join(f"{n} {s:.0%}" for n, s in r["phase_share"].items()))
    ks = sorted(res, key=int)
    if len(ks) >= 2:
        a, b = res[ks[0]], res[ks[-1]]
        res["round_ratio"] = b["round_s"] / a["round_s"]
        res["idle_mib_per_client"] = ((b["rss_after_build_mib"] - a["rss_after_build_mib"])
                                      / (int(ks[-1]) - int(ks[0])))
        print(f"{ks[-1]} / {ks[0]} clients: round x{res['round_ratio']:.1f}; "
              f"{res['idle_mib_per_client'] * 1024:.0f} KiB per idle client")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
