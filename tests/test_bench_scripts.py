"""The benchmark's reference loop runs (not how fast: `make bench` times it).

``scripts/bench.py``'s bare PyTorch + peft loop once crashed on a scenario that leaves
the LoRA targets to the model, and no test noticed until `make bench` was run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_bare_reference_loop_runs_the_tiny_case():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--bare", "tiny"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_population_bench_runs_a_case():
    """`scripts/bench_population.py` measures one case in a process of its own (here the
    10,000-client lazy case, one round): set-up, round times and peak memory."""
    import json

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_population.py"),
                          "--one", "lazy_10k", "--rounds", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["clients"] == 10_000 and res["population"] == "lazy"
    assert len(res["round_s"]) == 1 and res["setup_s"] > 0 and res["peak_rss_mib"] > 0


def test_the_validate_bench_times_a_scenario_cold_and_warm(tmp_path):
    """`scripts/bench_validate.py` times whole `validate` processes: cold (an empty
    cache) and warm (the stored learning facts), and says whether the target holds."""
    import json

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_validate.py"),
                          "--scenarios", "smoke", "--repeats", "1", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads((tmp_path / "validate.json").read_text())
    r = res["scenarios"]["smoke"]
    assert r["cold_s"] > 0 and r["warm_s"] > 0 and r["warm_radio_variant_s"] > 0
    assert set(res) >= {"slowest_warm_s", "targets_met"}
