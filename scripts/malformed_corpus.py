"""An independent corpus of malformed scenarios, fed to ``wirelessfl validate``.

Every leaf key of the scenario schema (and of the plug-in sections) is set, one at a
time, to each of a list of bad values; a few whole-file cases are added (encodings,
empty, aliases, nesting, duplicates). Each case runs ``wirelessfl validate`` in a
fresh process with a 20 s limit and is classified:

* ``ok``       exit 0 (the value happened to be valid),
* ``error``    exit 2 with exactly one ``error:`` line,
* ``messy``    exit 2 with more than one line,
* ``crash``    any other exit status (a traceback),
* ``hang``     over 10 s (killed at 20 s).

Writes ``results/bench/malformed_corpus.csv`` and prints the counts. Usage::

    python scripts/malformed_corpus.py [--jobs 2] [--limit N]
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import TINY  # noqa: E402
from wirelessfl.scenario import Scenario  # noqa: E402

BAD = [True, False, None, math.nan, math.inf, -math.inf, 0, -1, 1e300, -1e300, 1e-300,
       10**12, "x", "", [], {}, [1, "a"], {"model": "nope"}, "this:x", "collections:OrderedDict",
       ":", "../../x"]
PLUGIN_KEYS = ["channel.fading.coherence_time_s", "channel.fading.k_factor_db",
               "channel.fading.speed_mps", "channel.pathloss.exponent",
               "method.compressor_options.lambda_orth", "method.controller_options.v",
               "method.controller_options.rank_candidates", "clients.selection_options.x",
               "model.options.path", "data.options.path"]


def leaf_keys(model=Scenario, prefix="") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            out.extend(leaf_keys(ann, f"{prefix}{name}."))
        else:
            out.append(f"{prefix}{name}")
    return out


def put(raw: dict, key: str, value) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[leaf] = value


def cases() -> list[tuple[str, bytes]]:
    base = copy.deepcopy(TINY)
    base["sim"] = {"expected_latency_rounds": 20}
    out = []
    for key in [*leaf_keys(), *PLUGIN_KEYS]:
        for value in BAD:
            raw = copy.deepcopy(base)
            put(raw, key, value)
            out.append((f"{key}={json.dumps(value)}", yaml.safe_dump(raw).encode()))
    text = yaml.safe_dump(base)
    lol = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(8))
    out += [("file:latin-1", text.replace("tiny", "tiny\u00e9").encode("latin-1")),
            ("file:utf-16", text.encode("utf-16")), ("file:empty", b""),
            ("file:{}", b"{}"), ("file:binary", bytes(range(256)) * 4),
            ("file:laughs", lol.encode()), ("file:deep", ("a: " + "[" * 5000).encode()),
            ("file:duplicate", (text + "rounds: 7\n").encode()),
            ("file:sexagesimal", (text.replace("rounds: 3", "rounds: 1:30")).encode())]
    return out


def classify(case: tuple[str, bytes], folder: Path) -> dict:
    name, content = case
    f = folder / f"{abs(hash(name))}.yaml"
    f.write_bytes(content)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "wirelessfl.cli", "validate", str(f)],
                           capture_output=True, text=True, timeout=20, env=env, cwd=ROOT)
        status, err = p.returncode, p.stderr.strip()
    except subprocess.TimeoutExpired:
        status, err = None, ""
    wall = time.perf_counter() - t0
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith("warning:")]
    if status is None or wall > 10:
        kind = "hang"
    elif status == 0:
        kind = "ok"
    elif status == 2 and len(lines) == 1 and lines[0].startswith("error: "):
        kind = "error"
    elif status == 2:
        kind = "messy"
    else:
        kind = "crash"
    return {"case": name, "kind": kind, "status": status, "wall_s": round(wall, 3),
            "stderr_last": (lines[-1] if lines else "")[:300]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    todo = cases()[: args.limit or None]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda c: classify(c, Path(tmp)), todo))
    out = ROOT / "results" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "malformed_corpus.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    counts = {k: sum(r["kind"] == k for r in rows) for k in
              ("ok", "error", "messy", "crash", "hang")}
    print(f"{len(rows)} cases: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"slowest: {max(r['wall_s'] for r in rows):.2f} s")
    for r in rows:
        if r["kind"] in ("messy", "crash", "hang"):
            print(f"  {r['kind']}: {r['case']}: {r['stderr_last']}")
    return 0 if counts["crash"] == counts["hang"] == counts["messy"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
