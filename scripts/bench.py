"""Benchmarks: simulator overhead against a bare PyTorch + peft loop.

Writes ``results/bench/overhead.json``, ``results/bench/channels.json`` (fading
gains sampled per second, 1,000 links x 1,000 blocks) and
``results/bench/control.json`` (SOFT against SVD selection per site; TSFA online
decision time at 10, 100 and 1,000 clients for both solvers; the time of
``wirelessfl validate`` on a typo). For each case the same model, data, client
shards, local steps, batch size and evaluations are run three ways: by
``wirelessfl`` (the full round loop: channel, simpy timeline, controller, results
files) with batched training (the default) and with ``batch_clients: false``, and
by a plain loop that trains one client after another, averages and evaluates. The
ratio of their wall times is the simulator's overhead factor (1.0 = free).

Usage: python scripts/bench.py [--cases tiny,minilm,smollm2] [--repeats 3]
                               [--parts overhead,channels,control]
       python scripts/bench.py --bare tiny            # the bare loop alone
       python scripts/bench.py --write-case tiny t.yaml  # then: wirelessfl run t.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wirelessfl.build import build_components, load_data
from wirelessfl.learning.models import build_base, wrap_lora
from wirelessfl.learning.partition import split_shards
from wirelessfl.observers import ResultsObserver
from wirelessfl.results import ResultsWriter, package_versions
from wirelessfl.scenario import parse_scenario
from wirelessfl.session import play

CASES = {
    "tiny": {
        "name": "bench-tiny", "seed": 0, "rounds": 5,
        "clients": {"count": 4, "local_steps": 5, "batch_size": 16, "device": "jetson"},
        "model": {"name": "tiny-bert", "max_length": 16, "lora": {"rank": 4, "alpha": 8}},
        "data": {"name": "synthetic", "synthetic": {"num_samples": 600}},
        "output": {"plots": False, "save_adapter": False},
    },
    "minilm": {
        "name": "bench-minilm", "seed": 0, "rounds": 2,
        "clients": {"count": 4, "local_steps": 3, "batch_size": 16, "device": "jetson"},
        "model": {"name": "minilm-l6", "max_length": 64, "lora": {"rank": 8, "alpha": 16}},
        "data": {"name": "bbc", "partition": {"scheme": "dirichlet", "alpha": 0.5}},
        "eval": {"every": 2},
        "output": {"plots": False, "save_adapter": False},
    },
    "smollm2": {  # a pretrained causal LM: instruction tuning, response-only loss
        "name": "bench-smollm2", "seed": 0, "rounds": 2,
        "clients": {"count": 4, "local_steps": 2, "batch_size": 4, "device": "jetson"},
        "model": {"name": "smollm2-135m", "max_length": 64, "lora": {"rank": 8, "alpha": 16}},
        "data": {"name": "bbc", "options": {"format": "topic"}, "partition": {"scheme": "iid"},
                 "test_fraction": 0.01},
        "eval": {"every": 2, "batch_size": 16},
        "output": {"plots": False, "save_adapter": False},
    },
}


def fedavg_rounds(sc, model, shards, loss_of, evaluate) -> None:
    """The scenario's rounds in plain PyTorch: every client trains ``local_steps`` AdamW
    steps on ``loss_of(idx)`` from the global adapter, FedAvg weighted by shard size,
    ``evaluate(idx)`` over the test shard at the evaluation rounds."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    glob = {n: p.detach().clone() for n, p in params.items()}
    gen = torch.Generator().manual_seed(0)
    steps, bs = sc.clients.local_steps, sc.clients.batch_size
    for t in range(sc.rounds):
        acc = {n: torch.zeros_like(v) for n, v in glob.items()}
        total = sum(len(s) for s in shards.train)
        for shard in shards.train:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(glob[n])
            model.train()
            opt = torch.optim.AdamW(params.values(), lr=sc.clients.learning_rate)
            for _ in range(steps):
                idx = torch.as_tensor(shard)[torch.randint(len(shard), (bs,), generator=gen)]
                loss = loss_of(idx)
                opt.zero_grad()
                loss.backward()
                opt.step()
            for n, p in params.items():
                acc[n] += p.detach() * (len(shard) / total)
        glob = acc
        if t % sc.eval.every == 0 or t == sc.rounds - 1:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(glob[n])
                model.eval()
                for s in range(0, len(shards.test), sc.eval.batch_size):
                    evaluate(torch.as_tensor(shards.test[s : s + sc.eval.batch_size]))


def bare_loop(sc) -> float:
    """Same training, FedAvg and evaluation as the scenario, in plain PyTorch + peft."""
    from wirelessfl.build import resolve_model

    if sc.model.name in CAUSAL:
        return bare_causal_loop(sc)
    t0 = time.perf_counter()
    sc = resolve_model(sc)  # the LoRA targets the scenario leaves to the model
    data = load_data(sc)
    shards = split_shards(sc, data)
    model = wrap_lora(build_base(sc.model.name, data.num_labels, data.vocab_size,
                                 sc.model.max_length, sc.model.pooling, 0),
                      sc.model.lora.rank, sc.model.lora.alpha, 0.0, sc.model.lora.target_modules,
                      1)

    def forward(idx):
        return model(input_ids=data.input_ids[idx], attention_mask=data.attention_mask[idx])

    fedavg_rounds(sc, model, shards,
                  lambda idx: F.cross_entropy(forward(idx), data.labels[idx]), forward)
    return time.perf_counter() - t0


CAUSAL = ("smollm2-135m", "tiny-llama")


def bare_causal_loop(sc) -> float:
    """A causal LM's instruction tuning in plain PyTorch + peft: the same data, shards,
    model, LoRA, steps and FedAvg; the masked next-token loss written out; held-out
    loss at the evaluation rounds."""
    from wirelessfl.build import resolve_model

    t0 = time.perf_counter()
    sc = resolve_model(sc)
    data = load_data(sc)
    shards = split_shards(sc, data)
    model = wrap_lora(build_base(sc.model.name, 0, data.vocab_size, sc.model.max_length,
                                 sc.model.pooling, 0, sc.model.options, task="causal_lm"),
                      sc.model.lora.rank, sc.model.lora.alpha, 0.0,
                      sc.model.lora.target_modules, 1)

    def loss_of(idx):
        logits = model(input_ids=data.input_ids[idx],
                       attention_mask=data.attention_mask[idx]).logits[:, :-1]
        tgt = data.labels[idx][:, 1:]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                               ignore_index=-100)

    fedavg_rounds(sc, model, shards, loss_of, loss_of)
    return time.perf_counter() - t0


def wirelessfl_run(sc) -> float:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        play(build_components(sc), [ResultsObserver(ResultsWriter(Path(tmp) / "run"))])
    return time.perf_counter() - t0


def channel_throughput(n_links: int = 1000, n_blocks: int = 1000,
                       repeats: int = 3) -> dict[str, dict[str, float]]:
    """Gains sampled per second by each fading model, ``n_links x n_blocks`` at once."""
    import channels  # noqa: F401
    from channels.base import CHANNELS

    params = {"rician": {"k_factor_db": 6.0}, "nakagami": {"m": 2.0},
              "jakes": {"max_doppler_hz": 50.0},
              "tdl": {"max_doppler_hz": 50.0, "profile": "C", "delay_spread_s": 300e-9},
              "cdl": {"max_doppler_hz": 50.0, "profile": "C", "delay_spread_s": 300e-9,
                      "bs_columns": 1}}
    out = {}
    for name in ("rayleigh", "rician", "nakagami", "jakes", "tdl", "cdl", "awgn"):
        best = float("inf")
        for r in range(repeats):
            ch = CHANNELS.get(name).from_dict(params.get(name, {}))
            ch.reset(n_links, np.random.default_rng(r))
            step = ch.coherence_time_s if np.isfinite(ch.coherence_time_s) else 1.0
            times = (np.arange(n_blocks) + 0.5) * step
            t0 = time.perf_counter()
            g = ch.gains(times)
            best = min(best, time.perf_counter() - t0)
        assert g.shape == (n_links, n_blocks)
        out[name] = {"seconds": round(best, 5),
                     "gains_per_s": round(n_links * n_blocks / best, 1)}
        print(f"channel {name}: {n_links}x{n_blocks} gains in {best * 1e3:.1f} ms "
              f"({n_links * n_blocks / best / 1e6:.1f} M/s)")
    # TDL-C (24 taps, 64 subcarriers) against Jakes (one tap), both 64 sinusoids a link
    out["tdl_over_jakes"] = round(out["tdl"]["seconds"] / out["jakes"]["seconds"], 3)
    print(f"channel tdl / jakes time: {out['tdl_over_jakes']}")
    # CDL-C (24 clusters of 20 rays, one antenna) against Jakes
    out["cdl_over_jakes"] = round(out["cdl"]["seconds"] / out["jakes"]["seconds"], 3)
    print(f"channel cdl / jakes time: {out['cdl_over_jakes']}")
    return out


def soft_vs_svd(repeats: int = 3) -> dict[str, dict[str, float]]:
    """Client-side selection cost per site: SOFT's norms + top-m against the SVD oracle.

    SOFT: ``||b_i|| ||a_i||`` and a top-m (O(r (d_in + d_out))). SVD oracle: form
    ``B A`` (d_out x d_in) and take its SVD, as a client without SOFT would.
    """
    from wirelessfl.compression.soft import top_ranks

    out = {}
    for d, r in ((384, 8), (1024, 16)):
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(r, d, generator=g), torch.randn(d, r, generator=g)
        m = r // 2

        def soft(a=a, b=b, m=m):
            s = (b.norm(dim=0) * a.norm(dim=1))[None]
            return top_ranks(s, m)

        def svd(a=a, b=b, m=m):
            u, s, vh = torch.linalg.svd(b @ a, full_matrices=False)
            return (u[:, :m] * s[:m]) @ vh[:m]

        times = {}
        for name, fn in (("soft", soft), ("svd", svd)):
            fn()
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            times[name] = best
        out[f"{d}x{d}_r{r}"] = {"soft_s": round(times["soft"], 7),
                                "svd_s": round(times["svd"], 5),
                                "svd_over_soft": round(times["svd"] / times["soft"], 1)}
        print(f"selection {d}x{d} r={r}: SOFT {times['soft'] * 1e6:.0f} us, "
              f"SVD {times['svd'] * 1e3:.1f} ms ({times['svd'] / times['soft']:.0f}x)")
    return out


def tsfa_solve_times(sizes=(10, 100, 1000), rounds: int = 3, cvxpy_rounds: int = 1,
                     cvxpy_max_clients: int = 10) -> dict[str, dict[str, dict[str, float]]]:
    """Wall time of one TSFA online decision on synthetic instances of n clients.

    Block Rayleigh fading with 10 ms blocks and the default window-law planning (17
    quadrature nodes per client), and instantaneous CSI (one node); a loaded queue so
    the trade-off is real. Both solvers decide the same rounds (the cvxpy reference,
    exact at every size, up to ``cvxpy_max_clients``); the first round (the cvxpy
    problem's construction) is reported apart.
    """
    from wirelessfl.control.base import LatencyQueue
    from wirelessfl.control.synthetic import SyntheticCell
    from wirelessfl.control.tsfa import TSFA, TSFAParams

    out: dict[str, dict[str, dict[str, float]]] = {}
    for csi, coherence in (("window_law", 0.01), ("instantaneous", None)):
        out[csi] = {}
        for n in sizes:
            row: dict[str, float] = {}
            for solver in ("fast", "cvxpy") if n <= cvxpy_max_clients else ("fast",):
                cell = SyntheticCell(n=n, rank=8, bandwidth_hz=1e6 * n, seed=0,
                                     coherence_time_s=coherence)
                ctrl = TSFA(TSFAParams(solver=solver))
                q = LatencyQueue(1.0)
                times, js = [], []
                for t in range((rounds if solver == "fast" else cvxpy_rounds) + 1):
                    ctx = cell.context(t, max(q.value, 1.0), 1.0)
                    t0 = time.perf_counter()
                    a = ctrl.online(ctx)
                    dt = time.perf_counter() - t0
                    if t == 0:
                        row[f"{solver}_first_round_s"] = round(dt, 4)
                    else:
                        times.append(dt)
                        js.append(ctrl.objective(ctx, a.keep_ranks)[0])
                    q.update(float(a.planned_latency_s.max()))
                row[f"{solver}_per_round_s"] = round(float(np.median(times)), 4)
                row[f"{solver}_objective"] = float(js[0])
            if "cvxpy_per_round_s" in row:
                row["cvxpy_over_fast"] = round(row["cvxpy_per_round_s"]
                                               / row["fast_per_round_s"], 1)
                row["fast_over_cvxpy_objective"] = row["fast_objective"] / row["cvxpy_objective"]
            out[csi][str(n)] = row
            print(f"tsfa online ({csi}), {n} clients: fast {row['fast_per_round_s'] * 1e3:.1f} "
                  f"ms, cvxpy {row.get('cvxpy_per_round_s', math.nan) * 1e3:.0f} ms per round",
                  flush=True)
    return out


def validate_error_s(repeats: int = 3) -> dict[str, float]:
    """Wall time from ``wirelessfl validate bad.yaml`` (a key typo) to its error line."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("wirelessfl")
    best, line, code = float("inf"), "", 0
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.yaml"
        bad.write_text("name: typo\nclients:\n  cuont: 10\n")
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = subprocess.run([str(exe), "validate", str(bad)], capture_output=True,
                                 text=True)
            best = min(best, time.perf_counter() - t0)
            line, code = res.stderr.strip().splitlines()[-1], res.returncode
    print(f"validate of a typo: {best:.2f} s, exit {code}: {line}")
    return {"seconds": round(best, 3), "exit_code": code, "message": line}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="tiny,minilm,smollm2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--parts", default="overhead,channels,control",
                    help="which files to (re)write: overhead, channels, control")
    ap.add_argument("--bare", metavar="CASE",
                    help="only run CASE's bare loop (to time it as a whole process)")
    ap.add_argument("--write-case", nargs=2, metavar=("CASE", "YAML"),
                    help="only write CASE's scenario to YAML (for `wirelessfl run`)")
    args = ap.parse_args()
    if args.bare:
        bare_loop(parse_scenario(CASES[args.bare]))
        return
    if args.write_case:
        import yaml

        Path(args.write_case[1]).write_text(yaml.safe_dump(CASES[args.write_case[0]]))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"host": {"machine": platform.machine(), "processor": platform.processor(),
                       "torch_threads": torch.get_num_threads(),
                       "cuda": torch.cuda.is_available()},
              "versions": package_versions(), "cases": {}}
    parts = set(args.parts.split(","))
    for name in args.cases.split(",") if "overhead" in parts else []:
        sc = parse_scenario(CASES[name])
        off = parse_scenario({**CASES[name], "compute": {"batch_clients": False}})
        bare, seq, bat = float("inf"), float("inf"), float("inf")
        for _ in range(args.repeats):  # interleaved, best of the repeats
            bare = min(bare, bare_loop(sc))
            seq = min(seq, wirelessfl_run(off))
            bat = min(bat, wirelessfl_run(sc))
        report["cases"][name] = {
            "scenario": CASES[name],
            "client_steps": sc.rounds * sc.clients.count * sc.clients.local_steps,
            "bare_pytorch_peft_s": round(bare, 4),
            "wirelessfl_run_s": round(bat, 4),
            "wirelessfl_run_sequential_s": round(seq, 4),
            "overhead_ratio": round(bat / bare, 4),
            "overhead_ratio_sequential": round(seq / bare, 4),
        }
        print(f"{name}: bare {bare:.2f} s, wirelessfl {bat:.2f} s (batched, x{bat / bare:.3f}), "
              f"{seq:.2f} s (sequential, x{seq / bare:.3f})", flush=True)
    if "overhead" in parts:
        (out / "overhead.json").write_text(json.dumps(report, indent=2))
        print(f"wrote {out / 'overhead.json'}")
    if "channels" in parts:
        chan = {"host": report["host"], "n_links": 1000, "n_blocks": 1000,
                "models": channel_throughput()}
        (out / "channels.json").write_text(json.dumps(chan, indent=2))
        print(f"wrote {out / 'channels.json'}")
    if "control" in parts:
        ctrl = {"host": report["host"], "soft_vs_svd_selection": soft_vs_svd(),
                "tsfa_online": tsfa_solve_times(),
                "validate_error": validate_error_s()}
        (out / "control.json").write_text(json.dumps(ctrl, indent=2))
        print(f"wrote {out / 'control.json'}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
