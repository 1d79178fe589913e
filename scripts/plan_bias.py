"""Realised against planned upload time, mean-rate plans against expected-finish plans.

``scenarios/smoke.yaml`` with 6 clients in a 300 m cell, a 5 MHz uplink and 30 rounds,
seeds 0-3, for block Rayleigh (10 ms), Jakes at 1.5 m/s (3.5 GHz), Jakes at a 2 Hz
Doppler, and TDL-C and CDL-C (300 ns, 8 sub-bands; CDL with a 4-column array) at
1.5 m/s, under min-max and equal bandwidth, with ``channel.csi.planning`` mean_rate
and expected_finish (``auto``, the default, is expected_finish for Jakes, TDL and CDL
and mean_rate for Rayleigh). Pooled ratio sum(realised) / sum(planned) over every
upload and over the weakest client's (lowest mean gain), and the mean round latency.
Writes ``results/bench/plan_bias.json``; ``docs/channels.md`` quotes it.

Usage: python scripts/plan_bias.py [--seeds 4] [--out results/bench]
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import yaml

import wirelessfl

FADINGS = {"rayleigh_10ms": {"model": "rayleigh", "coherence_time_s": 0.01},
           "jakes_1.5mps": {"model": "jakes", "speed_mps": 1.5},
           "jakes_2hz": {"model": "jakes", "max_doppler_hz": 2.0},
           "tdl_c_1.5mps": {"model": "tdl", "profile": "C", "speed_mps": 1.5},
           "cdl_c_1.5mps": {"model": "cdl", "profile": "C", "speed_mps": 1.5}}


def pooled(base: dict, fading: dict, controller: str, planning: str, seeds: int) -> dict:
    every, weak, latency = [], [], []
    for seed in range(seeds):
        raw = copy.deepcopy(base)
        raw["seed"] = seed
        raw["channel"] = {"fading": fading, "csi": {"planning": planning}}
        raw["method"]["controller"] = controller
        c = wirelessfl.run(raw, output=None)
        rows = c.clients[c.clients["received"]]
        every.append((rows["realised_upload_s"].sum(), rows["planned_upload_s"].sum()))
        worst = rows.groupby("client")["gain_db"].mean().idxmin()
        w = rows[rows["client"] == worst]
        weak.append((w["realised_upload_s"].sum(), w["planned_upload_s"].sum()))
        latency.append(float(c.metrics["round_latency_s"].mean()))

    def ratio(pairs):
        return float(sum(a for a, _ in pairs) / sum(b for _, b in pairs))

    return {"realised_over_planned": ratio(every), "weakest_client": ratio(weak),
            "round_latency_s": float(np.mean(latency))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--out", default="results/bench")
    args = ap.parse_args()
    base = yaml.safe_load(Path("scenarios/smoke.yaml").read_text())
    base.update(rounds=30, output={"plots": False, "save_adapter": False})
    base["clients"].update(count=6, placement={"model": "disk", "radius_m": 300,
                                               "min_distance_m": 20})
    base["radio"]["uplink_bandwidth_hz"] = 5e6
    rows = []
    for name, fading in FADINGS.items():
        for controller in ("minmax", "equal"):
            for planning in ("mean_rate", "expected_finish"):
                row = {"fading": name, "controller": controller, "planning": planning,
                       **pooled(base, fading, controller, planning, args.seeds)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan_bias.json").write_text(json.dumps({"seeds": args.seeds, "rows": rows},
                                                   indent=2) + "\n")
    print(f"wrote {out / 'plan_bias.json'}")


if __name__ == "__main__":
    main()
