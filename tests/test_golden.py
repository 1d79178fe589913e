"""Golden outputs: a handful of small scenarios must reproduce their recorded tables.

``tests/golden/<case>/`` holds ``metrics.csv``, ``clients.csv``, ``events.jsonl`` and,
where the run writes one, ``tsfa_offline.csv``, recorded by this file::

    .venv/bin/python tests/test_golden.py --write      # after an intended change

Host timings are not part of them (``timings.jsonl``, ``summary.json``). Every case
runs with one torch thread and a fixed group size, so nothing depends on the host's
core count or memory. On the machine the goldens were recorded on (same CPU model
and instruction set, same torch and numpy; ``tests/golden/MACHINE.json``) the
files must be byte-identical. Elsewhere float arithmetic may round differently, so
every non-float cell must still be equal and every float equal to a relative 1e-6.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import platform
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
FILES = ("metrics.csv", "clients.csv", "events.jsonl", "tsfa_offline.csv")

BASE = {
    "seed": 11,
    "rounds": 3,
    "clients": {"count": 4, "local_steps": 2, "batch_size": 8, "learning_rate": 0.01,
                "device": "jetson"},
    "radio": {"uplink_bandwidth_hz": 1.0e6},
    "channel": {"fading": {"model": "rayleigh", "coherence_time_s": 0.005}},
    "model": {"name": "tiny-bert", "max_length": 12, "lora": {"rank": 4, "alpha": 8}},
    "data": {"name": "synthetic", "synthetic": {"num_samples": 200, "num_classes": 3},
             "partition": {"scheme": "dirichlet", "alpha": 1.0, "min_samples": 4}},
    "compute": {"torch_threads": 1, "max_batched_clients": 2},
    "output": {"plots": False},
}


def _case(name: str, method: tuple[str, str, str], controller_options: dict | None = None,
          **sections) -> dict:
    raw = copy.deepcopy(BASE)
    raw["name"] = name
    raw["method"] = dict(zip(("aggregator", "compressor", "controller"), method, strict=True))
    raw["method"]["controller_options"] = controller_options or {}
    for key, value in sections.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:
            raw[key] = value
    return raw


CASES = {
    "fedit": _case("fedit", ("fedit", "none", "equal")),
    "flora_minmax": _case(
        "flora_minmax", ("flora", "none", "minmax"),
        model={"name": "tiny-bert", "max_length": 12,
               "lora": {"rank": 4, "alpha": 8, "client_ranks": [2, 4, 2, 4]}},
        compute={"torch_threads": 1, "batch_clients": False}),
    "fedtree": _case("fedtree", ("fedtree", "none", "equal"),
                     clients={**BASE["clients"], "count": 5}),
    "tsfa_soft": _case(
        "tsfa_soft", ("fedit", "soft", "tsfa"),
        controller_options={"rank_candidates": [2, 4], "pilot_clients": 2},
        controller={"latency_budget_s": 0.02}),
    "tsfa_sched_partial": _case(
        "tsfa_sched_partial", ("fedit", "soft", "tsfa_sched"),
        clients={**BASE["clients"], "count": 6, "fraction": 0.5, "selection": "random"},
        controller={"latency_budget_s": 0.006}, rounds=4),
    "jakes_mobility_csi": _case(
        "jakes_mobility_csi", ("ffa", "topk", "tsfa"),
        clients={**BASE["clients"], "mobility": {"model": "random_waypoint",
                                                  "speed_mps": 20.0}},
        channel={"fading": {"model": "jakes", "max_doppler_hz": 30.0},
                 "csi": {"error_std_db": 2.0, "delay_s": 0.002}},
        controller={"latency_budget_s": 0.012}, sim={"deadline_s": 0.02}),
    "uma_florist_fixed": _case(
        "uma_florist_fixed", ("florist", "random", "fixed"),
        clients={**BASE["clients"], "count": 5, "fraction": 0.6,
                 "selection": "channel_aware"},
        channel={"fading": {"model": "nakagami", "coherence_time_s": 0.004},
                 "pathloss": {"model": "uma"}}),
}


def machine() -> dict[str, str]:
    """What decides float rounding here: CPU model and instruction set, libraries."""
    import numpy
    import torch

    cpu, flags = platform.processor(), ""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text()
                    .split("\n\n")[0].splitlines() if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
        cpu = info.get("model name", cpu)
        flags = " ".join(sorted(f for f in info.get("flags", "").split()
                                if f.startswith(("avx", "fma", "sse4"))))
    except OSError:
        pass
    return {"machine": platform.machine(), "cpu": cpu, "flags": flags,
            "torch": torch.__version__, "numpy": numpy.__version__}


def play(name: str, folder: Path) -> Path:
    import wirelessfl

    wirelessfl.run(CASES[name], output=folder / name)
    return folder / name


def _rows(text: str, file: str) -> list[list[str]]:
    if file.endswith(".jsonl"):
        return [[json.dumps(v, sort_keys=True) if not isinstance(v, float) else repr(v)
                 for v in _flat(json.loads(line))] for line in text.splitlines()]
    return list(csv.reader(text.splitlines()))


def _flat(obj, out=None) -> list:
    out = [] if out is None else out
    if isinstance(obj, dict):
        for k in sorted(obj):
            out.append(k)
            _flat(obj[k], out)
    elif isinstance(obj, list):
        for v in obj:
            _flat(v, out)
    else:
        out.append(obj)
    return out


def _close(want: str, got: str) -> bool:
    if want == got:
        return True
    try:
        a, b = float(want), float(got)
    except ValueError:
        return False
    if "." not in want + got and "e" not in (want + got).lower():
        return False  # integers must match exactly
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_outputs_are_reproduced(name, tmp_path):
    run = play(name, tmp_path)
    same_machine = json.loads((GOLDEN / "MACHINE.json").read_text()) == machine()
    wanted = [f for f in FILES if (GOLDEN / name / f).is_file()]
    assert {f for f in FILES if (run / f).is_file()} == set(wanted)
    for file in wanted:
        want, got = (GOLDEN / name / file).read_text(), (run / file).read_text()
        if same_machine:
            assert got == want, f"{name}/{file} differs from the golden output"
            continue
        rw, rg = _rows(want, file), _rows(got, file)
        assert [len(r) for r in rg] == [len(r) for r in rw], f"{name}/{file}: shape"
        for i, (a, b) in enumerate(zip(rw, rg, strict=True)):
            bad = [j for j, (x, y) in enumerate(zip(a, b, strict=True)) if not _close(x, y)]
            assert not bad, f"{name}/{file} row {i}: {a[bad[0]]!r} != {b[bad[0]]!r}"


def write() -> None:
    """Record every case's tables and this machine's fingerprint."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(CASES):
            run = play(name, Path(tmp))
            shutil.rmtree(GOLDEN / name, ignore_errors=True)
            (GOLDEN / name).mkdir(parents=True)
            for file in FILES:
                if (run / file).is_file():
                    shutil.copyfile(run / file, GOLDEN / name / file)
            print(f"{name}: {', '.join(f for f in FILES if (run / f).is_file())}")
    (GOLDEN / "MACHINE.json").write_text(json.dumps(machine(), indent=2) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_golden.py --write")
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    write()
