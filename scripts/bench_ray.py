"""Ray benchmarks: start-up cost, client training on actors against local, actor memory,
and a 4-run sweep on Ray against local worker processes.

Writes ``results/bench/ray.json``. Every number is host wall time on this machine,
measured side by side in one process, with 1 torch thread per process.

Usage: python scripts/bench_ray.py [--clients 10,100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]


def scenario(clients: int, backend: str, model: str = "tiny-bert") -> dict:
    return {
        "name": f"ray-bench-{clients}", "seed": 0, "rounds": 2,
        "clients": {"count": clients, "local_steps": 1, "batch_size": 16, "device": "jetson"},
        "model": {"name": model, "max_length": 16, "lora": {"rank": 4, "alpha": 8}},
        "data": {"name": "synthetic", "synthetic": {"num_samples": max(600, 20 * clients)},
                 "partition": {"scheme": "iid"}},
        "compute": {"torch_threads": 1, "backend": backend, "ray_actors": 2},
        "output": {"plots": False, "save_adapter": False},
    }


def ray_startup(repeats: int) -> dict:
    code = ("import time, ray; t0 = time.perf_counter(); ray.init(num_cpus=2, "
            "include_dashboard=False, object_store_memory=100 << 20, "
            "_node_ip_address='127.0.0.1', log_to_driver=False); t1 = time.perf_counter(); "
            "ray.get(ray.remote(lambda: 1).remote()); t2 = time.perf_counter(); ray.shutdown(); "
            "print(t1 - t0, t2 - t1, time.perf_counter() - t2)")
    rows = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split()
        rows.append([float(x) for x in out[-3:]])
    return {"init_s": statistics.median(r[0] for r in rows),
            "first_task_s": statistics.median(r[1] for r in rows),
            "shutdown_s": statistics.median(r[2] for r in rows)}


def client_backend(sizes: list[int], repeats: int) -> dict:
    import ray

    import wirelessfl
    from wirelessfl.backends.ray import TrainerActor

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 << 20,
             _node_ip_address="127.0.0.1", log_to_driver=False)
    out = {}
    try:
        for backend in ("local", "ray"):  # warm-up: imports and first-touch costs
            wirelessfl.run(scenario(sizes[0], backend), output=None)
        for k in sizes:
            times = {"local": [], "ray": []}
            for _ in range(repeats):
                for backend in ("local", "ray"):
                    t0 = time.perf_counter()
                    wirelessfl.run(scenario(k, backend), output=None)
                    times[backend].append(time.perf_counter() - t0)
            med = {b: statistics.median(v) for b, v in times.items()}
            out[f"{k}_clients"] = {"local_run_s": med["local"], "ray_run_s": med["ray"],
                                   "ray_over_local": med["ray"] / med["local"]}
        # memory of one actor holding the model and the data (resident set size)
        mem = {}
        for model in ("tiny-bert", "minilm-l6"):
            sc = scenario(10, "local", model)
            if model == "minilm-l6":
                sc["data"] = {"name": "bbc"}
                sc["model"]["max_length"] = 128
            from wirelessfl.scenario import parse_scenario

            actor = ray.remote(TrainerActor).options(num_cpus=1).remote(
                parse_scenario(sc).model_dump(mode="json"), 1)
            pid = ray.get(actor.__ray_call__.remote(lambda self: os.getpid()))
            rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf(
                "SC_PAGE_SIZE")
            mem[model] = {"actor_rss_mib": rss / 2**20}
            ray.kill(actor)
        out["actor_memory"] = mem
    finally:
        ray.shutdown()
    return out


def sweep(repeats: int) -> dict:
    base = [sys.executable, "-m", "wirelessfl.cli", "sweep", "scenarios/smoke.yaml", "--grid",
            "seed=0,1,2,3", "--set", "output.plots=false", "--set", "compute.torch_threads=1",
            "-q"]
    times = {"jobs2": [], "ray": []}
    for _ in range(repeats):
        for name, extra in (("jobs2", ["--jobs", "2"]), ("ray", ["--backend", "ray"])):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                subprocess.run([*base, *extra, "--out", tmp], check=True, cwd=ROOT,
                               capture_output=True)
                times[name].append(time.perf_counter() - t0)
    med = {b: statistics.median(v) for b, v in times.items()}
    return {"jobs2_s": med["jobs2"], "ray_s": med["ray"], "ray_over_jobs2": med["ray"] /
            med["jobs2"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="10,100")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="results/bench")
    args = ap.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        print("ray is not installed (pip install -e '.[ray]'): Ray benchmarks skipped")
        return
    res = {"host": platform.node(), "cpus": os.cpu_count(), "torch_threads": 1,
           "ray_startup": ray_startup(args.repeats),
           "client_backend": client_backend([int(x) for x in args.clients.split(",")],
                                            args.repeats),
           "sweep_4_smoke_runs": sweep(args.repeats)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ray.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
