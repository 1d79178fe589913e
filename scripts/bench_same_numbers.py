"""How far apart are a seed's numbers when only the training path changes?

``scenarios/smoke.yaml`` with 8 clients and 4 rounds (tiny-bert's own dropout 0.1 on
hidden states and attention, LoRA dropout 0.1), for every aggregator: trained one by
one (``compute.batch_clients: false``, the reference) and in groups of 1, 2, 3 and
all 8 (``compute.max_batched_clients``). For each run against the reference: the
largest relative gap of the per-round train losses (round means and every client's),
the largest gap of the per-round accuracy, and whether the two ``metrics.csv``
training columns are bit for bit equal. Writes ``results/bench/same_numbers.json``;
``docs/decisions.md`` ("Same numbers everywhere") quotes it.

Usage: python scripts/bench_same_numbers.py [--out results/bench]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch
import yaml

import wirelessfl

AGGREGATORS = ["fedit", "ffa", "flora", "florist", "fedtree"]
GROUPS = [1, 2, 3, 8]


def rel_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|a - b| / |b|`` (0 where both are 0)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/bench")
    args = ap.parse_args()
    raw = yaml.safe_load(Path("scenarios/smoke.yaml").read_text())
    raw["rounds"] = 4
    raw["clients"]["count"] = 8
    raw["model"]["lora"]["dropout"] = 0.1
    raw["compute"] = {"torch_threads": 1}
    raw["output"] = {"plots": False}
    cases = []
    for agg in AGGREGATORS:
        raw["method"]["aggregator"] = agg
        ref = wirelessfl.run(raw, output=None, compute__batch_clients=False)
        for size in GROUPS:
            run = wirelessfl.run(raw, output=None, compute__max_batched_clients=size)
            cols = ["train_loss", "accuracy", "loss"]
            case = {
                "aggregator": agg, "clients_per_pass": size,
                "round_train_loss_rel_gap": rel_gap(run.metrics["train_loss"],
                                                    ref.metrics["train_loss"]),
                "client_train_loss_rel_gap": rel_gap(run.clients["train_loss"],
                                                     ref.clients["train_loss"]),
                "accuracy_gap": float(np.max(np.abs(run.metrics["accuracy"]
                                                    - ref.metrics["accuracy"]))),
                "final_accuracy": float(run.metrics["accuracy"].iloc[-1]),
                "reference_final_accuracy": float(ref.metrics["accuracy"].iloc[-1]),
                "bitwise": bool(run.metrics[cols].equals(ref.metrics[cols])),
            }
            cases.append(case)
            print(json.dumps(case), flush=True)
    worst = {k: max(c[k] for c in cases) for k in
             ("round_train_loss_rel_gap", "client_train_loss_rel_gap", "accuracy_gap")}
    report = {"host": {"machine": platform.machine(), "torch": torch.__version__,
                       "torch_threads": 1},
              "runs": len(cases), "bitwise_runs": sum(c["bitwise"] for c in cases),
              "worst": worst, "cases": cases}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "same_numbers.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"worst {worst}; {report['bitwise_runs']} of {len(cases)} runs bit for bit; "
          f"wrote {out / 'same_numbers.json'}")


if __name__ == "__main__":
    main()
