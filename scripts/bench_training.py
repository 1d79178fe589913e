"""Batched against sequential client training: client-steps per second.

For each model (tiny-bert, MiniLM) and client count (10, 100), the same clients train
from the same start state with the same batches twice per repeat, interleaved: one
after another (``compute.batch_clients: false``, the reference path) and together
in groups of the default size (``clients_per_pass``, see
``wirelessfl.learning.batched``). A third timing measures what per-client dropout
masks cost: the stacked path again with torch's own dropout (one global stream for
the whole group, as before per-client streams; ``mask_cost`` is the ratio of the two
times). The best of the repeats is kept. Thread counts:
torch's default and 1. Writes ``results/bench/training.json``; on a machine with a
GPU the same cases also run there (``device: cuda``).

Usage: python scripts/bench_training.py [--models tiny-bert,minilm-l6]
       [--clients 10,100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time
from pathlib import Path

import torch

from wirelessfl.build import build_components
from wirelessfl.learning import client
from wirelessfl.learning.client import round_job
from wirelessfl.scenario import parse_scenario

STEPS = {"tiny-bert": 4, "minilm-l6": 1, "smollm2-135m": 1}  # local steps a round
BATCH = {"smollm2-135m": 4}  # local batch (default 16)
CLIENTS = {"smollm2-135m": [8]}  # clients (default --clients)
# group size measured when the automatic rule picks 1 (one by one), so that the stacked
# path's cost is measured anyway
FORCE = {"smollm2-135m": 4}
DATA = {"tiny-bert": {"name": "synthetic"},
        "smollm2-135m": {"name": "bbc", "options": {"format": "topic"}}}


def scenario(model: str, clients: int, device: str):
    data = DATA.get(model, {"name": "bbc"})
    if data["name"] == "synthetic":
        data = {**data, "synthetic": {"num_samples": 64 * clients}}
    return parse_scenario({
        "name": "bench-training", "seed": 0, "rounds": 1,
        "clients": {"count": clients, "local_steps": STEPS[model],
                    "batch_size": BATCH.get(model, 16)},
        "model": {"name": model, "max_length": 64},
        "data": {**data, "partition": {"scheme": "iid"}},
        "compute": {"device": device},
        "output": {"plots": False, "save_adapter": False},
    })


def case(model: str, clients: int, device: str, repeats: int) -> dict:
    bench = build_components(scenario(model, clients, device)).bench
    auto = bench.clients_per_pass
    per_pass = auto if auto > 1 else FORCE.get(model, auto)
    sync = torch.cuda.synchronize if bench.device.type == "cuda" else (lambda: None)

    def jobs():  # fresh streams every time: the same batches in both paths
        return [round_job(0, k, 0, bench.initial_state, int(bench.ranks[k]))
                for k in range(clients)]

    def sequential() -> None:
        for j in jobs():
            bench.train_one(j)

    def batched() -> None:  # the stacked path itself, also where the rule would pick 1
        js = jobs()
        for i in range(0, clients, per_pass):
            group = js[i : i + per_pass]
            bench.trainer.train_many(group, [bench.shards.train[j.client] for j in group])

    def batched_torch_masks() -> None:  # the stacked path with torch's own dropout
        own = client.client_dropout
        client.client_dropout = lambda *a, **k: contextlib.nullcontext()
        try:
            batched()
        finally:
            client.client_dropout = own

    paths = (("sequential", sequential), ("batched", batched),
             ("batched_torch_masks", batched_torch_masks))
    best = {name: float("inf") for name, _ in paths}
    batched()  # warm-up (first-touch allocations, kernels)
    for _ in range(repeats):
        for name, fn in paths:
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            best[name] = min(best[name], time.perf_counter() - t0)
    steps = clients * STEPS[model]
    out = {"clients": clients, "clients_per_pass": per_pass, "auto_clients_per_pass": auto,
           "client_steps": steps,
           "threads": torch.get_num_threads(), "device": str(bench.device),
           **{f"{k}_s": round(v, 4) for k, v in best.items()},
           **{f"{k}_steps_per_s": round(steps / v, 2) for k, v in best.items()},
           "speedup": round(best["sequential"] / best["batched"], 3),
           "mask_cost": round(best["batched"] / best["batched_torch_masks"], 3)}
    print(f"{model} {clients} clients, {out['threads']} threads, {out['device']}: "
          f"sequential {out['sequential_steps_per_s']} steps/s, batched "
          f"{out['batched_steps_per_s']} ({per_pass} per pass): x{out['speedup']}; "
          f"per-client masks cost x{out['mask_cost']}",
          flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tiny-bert,minilm-l6,smollm2-135m")
    ap.add_argument("--clients", default="10,100")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="results/bench")
    args = ap.parse_args()
    default_threads = torch.get_num_threads()
    report = {"host": {"machine": platform.machine(), "processor": platform.processor(),
                       "default_torch_threads": default_threads,
                       "cuda": torch.cuda.is_available()},
              "cases": []}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for model in args.models.split(","):
            threads = [default_threads] if model != "tiny-bert" or device == "cuda" \
                else sorted({default_threads, 1}, reverse=True)
            for th in threads:
                torch.set_num_threads(th)
                for k in CLIENTS.get(model, [int(x) for x in args.clients.split(",")]):
                    report["cases"].append({"model": model, **case(model, k, device,
                                                                    args.repeats)})
    torch.set_num_threads(default_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / 'training.json'}")


if __name__ == "__main__":
    main()
