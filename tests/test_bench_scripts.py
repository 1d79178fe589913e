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
