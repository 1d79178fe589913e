"""`wirelessfl validate` benchmark: every shipped scenario, cold and warm.

Each call is a whole process (the ``wirelessfl`` command), as a user runs it.
Cold: an empty cache folder (``WIRELESSFL_CACHE``), so the first call imports torch,
builds the model and data and stores the learning facts; warm: the calls after it,
which read them (no torch). A radio-side variant (``--set radio.tx_power_dbm=-1``, a
weak link) is timed warm too: it reuses the facts and computes its radio side again.
The warm figures are medians of ``--repeats`` calls. Target: every warm call under 2 s.
Writes ``results/bench/validate.json``.

Usage: python scripts/bench_validate.py [--repeats 3] [--scenarios smoke,channels]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0
RADIO_VARIANT = ["--set", "radio.tx_power_dbm=-1"]
#: the installed console script beside this Python, as a user types it
_SCRIPT = Path(sys.executable).with_name("wirelessfl")
COMMAND = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "wirelessfl.cli"]


def timed(scenario: Path, cache: Path, extra: list[str]) -> float:
    """Wall seconds of one ``validate`` process (which must succeed)."""
    env = {**os.environ, "WIRELESSFL_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run([*COMMAND, "validate", str(scenario), *extra], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenarios", default="", help="names, comma-separated (default all)")
    ap.add_argument("--out", default="results/bench")
    args = ap.parse_args()
    names = [n for n in args.scenarios.split(",") if n]
    paths = sorted((ROOT / "scenarios").glob("*.yaml"))
    paths = [p for p in paths if not names or p.stem in names]
    res: dict = {"target_warm_s": TARGET_S, "repeats": args.repeats, "scenarios": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            cache = Path(tmp) / path.stem
            cold = timed(path, cache, [])
            warm = [timed(path, cache, []) for _ in range(args.repeats)]
            radio = [timed(path, cache, RADIO_VARIANT) for _ in range(args.repeats)]
            r = {"cold_s": cold, "warm_s": statistics.median(warm),
                 "warm_radio_variant_s": statistics.median(radio)}
            r["cold_over_warm"] = r["cold_s"] / r["warm_s"]
            res["scenarios"][path.stem] = r
            print(f"{path.stem}: cold {cold:.2f} s, warm {r['warm_s']:.2f} s, weak-link "
                  f"variant warm {r['warm_radio_variant_s']:.2f} s")
    rows = res["scenarios"].values()
    res["slowest_warm_s"] = max(max(r["warm_s"], r["warm_radio_variant_s"]) for r in rows)
    res["targets_met"] = res["slowest_warm_s"] < TARGET_S
    print(f"slowest warm validate: {res['slowest_warm_s']:.2f} s (target < {TARGET_S} s)")
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "validate.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
