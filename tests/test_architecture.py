"""The house keeps its shape: small modules, a loop that names no method.

(The import layers and the absence of cycles are checked by ``lint-imports``, which
``make test`` runs before pytest; the contracts are in setup.cfg.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "wirelessfl"
SCHEMA = {"scenario.py"}  # the declarative scenario schema may be long


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_the_round_loop_module_is_at_most_300_lines():
    assert lines(PACKAGE / "runner.py") <= 300


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_600_lines(path):
    if path.name not in SCHEMA:
        assert lines(path) <= 600


def test_the_loop_reads_no_scenario_and_no_methods_keys():
    src = (PACKAGE / "runner.py").read_text()
    code = re.sub(r'""".*?"""', "", src, flags=re.S)  # docstrings may name things
    assert "scenario" not in code.lower()
    for method in ("tsfa", "soft", "flora", "fedtree", "fedit", "minmax"):
        assert method not in code.lower(), method
    assert "_wall_s" not in code  # host timings come apart from metrics, not by name


def test_the_results_folder_names_no_methods_file():
    assert "tsfa" not in (PACKAGE / "results.py").read_text().lower()
