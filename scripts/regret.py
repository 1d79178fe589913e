"""Regret of the controllers against the per-round hindsight optimum, on a recorded trace.

    python scripts/regret.py [--rounds 200] [--clients 4] [--rank 4] [--budget 0.7]
                             [--coherence-time-s 0.01] [--seed 0] [--out results/regret]

The budget is a fraction of the equal-bandwidth full-rank mean latency of the same
cell. Writes ``rounds.csv``, ``regret.csv`` (one row per controller) and
``regret.png`` to ``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wirelessfl.cli import guarded
from wirelessfl.control import CONTROLLERS
from wirelessfl.control.regret import play, summarise, write
from wirelessfl.control.synthetic import SyntheticCell, run_rounds
from wirelessfl.errors import ScenarioError

CONTROLLER_NAMES = ("equal", "minmax", "fixed", "greedy", "tsfa")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--budget", type=float, default=0.7, help="fraction of equal's latency")
    ap.add_argument("--coherence-time-s", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--controllers", default=",".join(CONTROLLER_NAMES))
    ap.add_argument("--out", type=Path, default=Path("results/regret"))
    args = ap.parse_args(argv)
    for key, ok in (("--rounds", 1 <= args.rounds <= 100_000), ("--clients", 1 <= args.clients
                    <= 8), ("--rank", 1 <= args.rank <= 8), ("--budget", 0 < args.budget
                    < 100), ("--coherence-time-s", 0 < args.coherence_time_s < 1e3)):
        if not ok:
            raise ScenarioError(key, "out of range (rounds 1..1e5, clients 1..8, rank 1..8, "
                                "budget in (0, 100), coherence time in (0, 1000) s)")

    def cell() -> SyntheticCell:
        return SyntheticCell(n=args.clients, rank=args.rank, bandwidth_hz=2e6, seed=args.seed,
                             coherence_time_s=args.coherence_time_s, per_rank_bits=2e5,
                             compute_range_s=(0.01, 0.03))

    eq = run_rounds(CONTROLLERS.get("equal")(), cell(), args.rounds, None)["latency_s"]
    budget = args.budget * float(np.mean(eq))
    rows = []
    for name in args.controllers.split(","):
        rows += play(name, CONTROLLERS.get(name)(), cell(), args.rounds, budget)
    table = summarise(rows, budget)
    write(rows, table, args.out)
    cols = list(table[0])
    print(" | ".join(cols))
    for row in table:
        print(" | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    print(f"wrote {args.out}/regret.csv, rounds.csv, regret.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(guarded(main))
