"""Every aggregator on the same BBC scenario and seed: ``scripts/compare.py --preset aggregators``.

Usage: python scripts/compare_aggregators.py [--set key=value ...] [--values fedit,flora]

Writes ``results/compare_aggregators/table.{md,csv}`` (final and best accuracy,
personalised accuracy for fedtree, uplink and downlink bits, simulated time).
"""

from __future__ import annotations

import sys

from compare import main

from wirelessfl.cli import guarded

if __name__ == "__main__":
    sys.exit(guarded(main, ["--preset", "aggregators", *sys.argv[1:]]))
