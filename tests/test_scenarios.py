"""Every scenario in scenarios/ is valid as shipped (every plug-in name and option)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wirelessfl import build
from wirelessfl.scenario import load_raw, load_scenario

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_is_valid_and_documented(path):
    sc = load_scenario(path)
    build.check(sc)
    assert path.read_text().startswith("# "), "each scenario opens with a comment block"
    assert sc.name == path.stem or path.stem == "quickstart" and sc.name == "quickstart"
    assert isinstance(load_raw(path), dict)


def test_the_library_covers_the_documented_studies():
    names = {p.stem for p in SCENARIOS}
    assert {"quickstart", "smoke", "heterogeneity", "channels", "latency_budget",
            "aggregators", "partial_participation", "tsfa_vs_baselines"} <= names
