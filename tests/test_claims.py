"""Every number docs/tsfa.md quotes comes from ``scripts/tsfa_claims.py``.

The doc's measured figures sit in blocks that the script renders
(``<!-- claims:NAME -->``). These tests render each group again and compare the
doc's block with it: the text equal apart from numbers, every number within one
unit of its last printed digit (plus a relative tolerance for groups whose runs
train models, whose floats may differ between machines). The cheap groups run in
CI, the others are marked slow. A last test reads the rest of the doc: a number
outside a block must be a setting or a definition written as code (backticks), so
no measured figure can be quoted without its source.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("tsfa_claims", ROOT / "scripts" / "tsfa_claims.py")
claims = importlib.util.module_from_spec(spec)
spec.loader.exec_module(claims)

NUM = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")
REL = {"soft": 0.0, "quadrature": 0.0, "lyapunov": 1e-6, "regret": 1e-6, "study": 1e-3}


def numbers(text: str) -> list[tuple[str, float]]:
    return [(m.group(), float(m.group().replace(",", ""))) for m in NUM.finditer(text)]


def unit(token: str) -> float:
    """One unit of the token's last printed digit."""
    mant = token.split("e")[0]
    digits = len(mant.split(".")[1]) if "." in mant else 0
    exp = int(token.split("e")[1]) if "e" in token else 0
    return 10.0 ** (exp - digits)


def assert_same(name: str, doc: str, fresh: str, rel: float) -> None:
    assert NUM.sub("#", doc) == NUM.sub("#", fresh), (
        f"block {name}: its text differs from what the script renders; run "
        f"python scripts/tsfa_claims.py --write-docs\n--- doc\n{doc}\n--- fresh\n{fresh}")
    for (ta, a), (tb, b) in zip(numbers(doc), numbers(fresh), strict=True):
        tol = max(unit(ta), unit(tb)) * (1 + 1e-9) + rel * max(abs(a), abs(b))
        assert abs(a - b) <= tol, f"block {name}: the doc says {ta}, its source gives {tb}"


def check_group(group: str) -> None:
    compute, render = claims.GROUPS[group]
    fresh = render(compute())
    doc = claims.blocks(claims.DOC.read_text())
    for name, body in fresh.items():
        assert name in doc, f"docs/tsfa.md has no block {name}"
        assert_same(name, doc[name], body, REL[group])


@pytest.mark.parametrize("group", claims.FAST)
def test_the_docs_cheap_figures_are_reproduced(group):
    check_group(group)


@pytest.mark.slow
@pytest.mark.parametrize("group", [g for g in claims.GROUPS if g not in claims.FAST])
def test_the_docs_expensive_figures_are_reproduced(group):
    check_group(group)


def test_every_block_of_the_doc_belongs_to_a_group():
    doc = claims.blocks(claims.DOC.read_text())
    known = {name for names in claims.BLOCKS.values() for name in names}
    assert set(doc) == known
    assert set(claims.BLOCKS) == set(claims.GROUPS)


def test_a_changed_number_is_caught():
    compute, render = claims.GROUPS["quadrature"]
    body = render(compute())["quadrature"]
    tok = numbers(body)[1][0]
    bumped = body.replace(tok, f"{float(tok) + 2 * unit(tok):.{len(tok.split('.')[1])}f}", 1)
    with pytest.raises(AssertionError):
        assert_same("quadrature", bumped, body, 0.0)


DEFINITIONS = ("## Notation", "## Options", "## Baseline controllers")


def unsourced(text: str) -> list[str]:
    """Lines of prose with a number that is neither in a claims block, code, a
    heading, a link nor a definition table."""
    text = claims.BLOCK.sub("", text)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    out, section = [], ""
    for line in text.splitlines():
        if line.startswith("#"):
            section = line
            continue
        if line.startswith("    ") or (line.startswith("|") and section.startswith(DEFINITIONS)):
            continue  # an equation (indented) or a definition table
        prose = re.sub(r"`[^`]*`", "", line)
        prose = re.sub(r"\]\([^)]*\)", "]", prose)  # link targets
        prose = re.sub(r"\b(?:arXiv \d+\.\d+|K = 5|f_d|T_c|\w+_\d+\w*)\b", "", prose)
        if NUM.search(prose):
            out.append(line)
    return out


def test_every_number_in_the_doc_has_a_source():
    bad = unsourced((ROOT / "docs" / "tsfa.md").read_text())
    assert not bad, ("numbers outside claims blocks and code in docs/tsfa.md (quote "
                     "measured figures from scripts/tsfa_claims.py; write settings as "
                     "code):\n" + "\n".join(bad))
