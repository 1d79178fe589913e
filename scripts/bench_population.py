"""Population benchmark: a million clients on one machine, against ten thousand.

The same round at every size: 100 clients selected a round (random), tiny-bert, one
local step of batch 8, min-max bandwidth over 20 MHz, block Rayleigh fading (10 ms),
an IID deal of a synthetic data set of 2.5 examples per client, evaluation on a fixed
2,000-example subset (``eval.max_examples``). Cases: 10,000 and 1,000,000 clients held
lazily (``clients.population: lazy``), and 10,000 held eagerly for reference. Each case
runs in its own process (1 torch thread, so its peak memory is its own), twice,
interleaved; the round time is the median of rounds 1 to R over both. Targets: the
million-client case under 4 GiB peak, set-up under 60 s, a round at most 1.5x the
10,000-client round. Writes ``results/bench/population.json``.

Usage: python scripts/bench_population.py [--rounds 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

CASES = {"lazy_10k": (10_000, "lazy"), "lazy_1m": (1_000_000, "lazy"),
         "eager_10k": (10_000, "eager")}


def scenario(k: int, population: str, rounds: int) -> dict:
    return {
        "name": f"population-{k}", "seed": 0, "rounds": rounds + 1,
        "clients": {"count": k, "fraction": 100 / k, "local_steps": 1, "batch_size": 8,
                    "device": "phone", "population": population},
        "radio": {"uplink_bandwidth_hz": 20e6},
        "channel": {"fading": {"model": "rayleigh", "coherence_time_s": 0.01}},
        "model": {"name": "tiny-bert", "max_length": 16, "lora": {"rank": 4, "alpha": 8}},
        "data": {"name": "synthetic", "synthetic": {"num_samples": int(2.5 * k)},
                 "partition": {"scheme": "iid"}},
        "method": {"aggregator": "fedit", "compressor": "none", "controller": "minmax"},
        "eval": {"max_examples": 2000, "personal_examples": 10},
        "output": {"plots": False, "save_adapter": False},
    }


def one(case: str, rounds: int) -> dict:
    import resource
    import time

    import torch

    torch.set_num_threads(1)
    from wirelessfl.build import build_components
    from wirelessfl.scenario import parse_scenario
    from wirelessfl.session import play

    k, population = CASES[case]
    sc = parse_scenario(scenario(k, population, rounds))
    t0 = time.perf_counter()
    c = build_components(sc)
    setup_s = time.perf_counter() - t0
    times: list[float] = []

    class Timer:
        def on_start(self, s):
            self.t = time.perf_counter()

        def on_round(self, r):
            now = time.perf_counter()
            times.append(now - self.t)
            self.t = now

        def on_end(self, e):
            pass

    summary = play(c, [Timer()])
    return {"clients": k, "population": population, "setup_s": setup_s,
            "round_s": times[1:], "peak_rss_mib":
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "final_accuracy": summary.get("final_accuracy")}


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.rounds)))
        return
    runs: dict[str, list[dict]] = {c: [] for c in args.cases.split(",")}
    for _ in range(args.repeats):
        for case in runs:  # interleaved: a slow spell of the machine hits every case
            out = subprocess.run([sys.executable, __file__, "--one", case, "--rounds",
                                  str(args.rounds)], capture_output=True, text=True,
                                 check=True)
            runs[case].append(json.loads(out.stdout.strip().splitlines()[-1]))
    res: dict = {"rounds": args.rounds, "repeats": args.repeats, "cases": {}}
    for case, rs in runs.items():
        r = {"clients": rs[0]["clients"], "population": rs[0]["population"],
             "setup_s": float(np.median([x["setup_s"] for x in rs])),
             "round_s": float(np.median([t for x in rs for t in x["round_s"]])),
             "peak_rss_mib": float(max(x["peak_rss_mib"] for x in rs)),
             "final_accuracy": rs[0]["final_accuracy"]}
        res["cases"][case] = r
        print(f"{case}: set-up {r['setup_s']:.1f} s, round {r['round_s']:.3f} s (median), "
              f"peak {r['peak_rss_mib']:.0f} MiB")
    cs = res["cases"]
    if {"lazy_1m", "lazy_10k"} <= set(cs):
        res["round_ratio_1m_over_10k"] = cs["lazy_1m"]["round_s"] / cs["lazy_10k"]["round_s"]
        print(f"round, 1,000,000 / 10,000 clients (lazy): x{res['round_ratio_1m_over_10k']:.2f}")
    if {"lazy_1m", "eager_10k"} <= set(cs):
        res["round_ratio_1m_over_eager_10k"] = (cs["lazy_1m"]["round_s"]
                                                / cs["eager_10k"]["round_s"])
        print(f"round, 1,000,000 lazy / 10,000 eager: x{res['round_ratio_1m_over_eager_10k']:.2f}")
    if "lazy_1m" in cs:
        m = cs["lazy_1m"]
        res["targets_met"] = bool(m["peak_rss_mib"] < 4096 and m["setup_s"] < 60
                                  and res.get("round_ratio_1m_over_10k", 0) <= 1.5)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "population.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
