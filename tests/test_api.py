"""The Python API: in-memory runs, folders, sweeps, plots, observers, the docs example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wirelessfl
from wirelessfl.errors import WirelessFLError

ROOT = Path(__file__).resolve().parents[1]


def test_the_library_page_runs_as_a_notebook(monkeypatch, tmp_path):
    """Every python block of docs/library.md, in order, in one namespace."""
    text = (ROOT / "docs" / "library.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 6
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ns: dict = {}
    for code in blocks:
        exec(compile(code, "docs/library.md", "exec"), ns)  # noqa: S102
    assert len(ns["watch"].values) == 2
    assert ns["r"].metrics["round"].tolist() == [0, 1, 2]
    assert ns["fig"].axes[0].get_xlabel() == "simulated time (s)"
    assert sorted(ns["table"]["seed"].unique().tolist()) == [0, 1]


def test_the_readme_python_block_runs_in_a_fresh_folder(monkeypatch, tmp_path):
    """The README's "From Python" block needs nothing but the scenario files: no run
    folder made earlier by a command."""
    import shutil

    text = (ROOT / "README.md").read_text()
    part = text[text.index("## From Python"):]
    code = re.search(r"```python\n(.*?)```", part, flags=re.S).group(1)
    (tmp_path / "scenarios").mkdir()
    shutil.copy(ROOT / "scenarios" / "smoke.yaml", tmp_path / "scenarios")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)  # noqa: S102
    assert ns["run"].finished and len(ns["run"].metrics) == 3
    assert sorted(ns["df"]["seed"].unique().tolist()) == [0, 1]


def test_in_memory_and_folder_runs_agree(tiny_raw, tmp_path):
    mem = wirelessfl.run(tiny_raw, output=None)
    disk = wirelessfl.run(tiny_raw, output=tmp_path / "run")
    host = [c for c in mem.metrics.columns if c.endswith("_wall_s")]
    assert mem.metrics.drop(columns=host).equals(disk.metrics.drop(columns=host))
    assert mem.clients.equals(disk.clients)
    assert set(mem.adapter) == set(disk.adapter)
    for k, v in mem.adapter.items():
        assert (v == disk.adapter[k]).all(), k
    assert not list(Path.cwd().glob("results/tiny"))  # output=None wrote nothing


def test_overrides_and_their_errors(tiny_raw):
    r = wirelessfl.run(tiny_raw, output=None, rounds=1, clients__count=2)
    assert len(r.metrics) == 1 and r.clients["client"].max() == 1
    with pytest.raises(WirelessFLError, match=r"^clients\.count: "):
        wirelessfl.run(tiny_raw, output=None, clients__count=0)
    with pytest.raises(WirelessFLError, match="scenario"):
        wirelessfl.run(42, output=None)


def test_an_unfinished_run_loads_marked(tiny_raw, tmp_path):
    wirelessfl.run(tiny_raw, output=tmp_path / "run", rounds=1)
    (tmp_path / "run" / "summary.json").unlink()
    with pytest.warns(UserWarning, match="unfinished"):
        r = wirelessfl.load(tmp_path / "run")
    assert not r.finished and len(r.metrics) == 1


def test_importing_does_not_touch_the_backend_or_hf_flag():
    code = ("import os, matplotlib; b = matplotlib.get_backend(); import wirelessfl.plotting, "
            "wirelessfl.learning.models as m; m.build_base('tiny-bert', 2, 50, 8, 'mean', 0); "
            "assert matplotlib.get_backend() == b, matplotlib.get_backend(); "
            "assert 'HF_HUB_OFFLINE' not in os.environ; print('ok')")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "MPLBACKEND")}
    env["MPLBACKEND"] = "svg"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_import_wirelessfl_is_cheap():
    code = ("import sys, wirelessfl; heavy = [m for m in ('torch', 'cvxpy', 'transformers', "
            "'pandas') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_run_whose_controller_needs_no_solver_never_imports_cvxpy(tmp_path):
    code = ("import sys, wirelessfl; wirelessfl.run('scenarios/smoke.yaml', output=None, "
            "rounds=1, method__controller='equal', compute__torch_threads=1); "
            "print('cvxpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr


def test_a_metric_first_seen_in_a_later_round_reaches_the_table(tmp_path):
    from wirelessfl.observers import ResultsObserver, RoundRecord
    from wirelessfl.results import ResultsWriter, read_csv

    obs = ResultsObserver(ResultsWriter(tmp_path / "run"))
    obs.on_round(RoundRecord(0, {"round": 0, "a": 1.0}, [], []))
    obs.on_round(RoundRecord(1, {"round": 1, "a": 2.0, "late": 5.0}, [], []))
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [r["late"] for r in rows] == ["", "5.0"]


def test_logging_reports_fallbacks_and_nothing_aggregated(tiny_raw, caplog):
    tiny_raw["sim"] = {"deadline_s": 1e-9}  # every client misses the deadline
    with caplog.at_level("WARNING", logger="wirelessfl"):
        wirelessfl.run(tiny_raw, output=None, rounds=2)
    assert "no update was aggregated" in caplog.text


def test_cli_version_init_and_plugins(tmp_path, capsys):
    from wirelessfl.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("wirelessfl ")
    assert main(["init", str(tmp_path / "demo")]) == 0
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert "smoke.yaml" in names and names == sorted(p.name for p in
                                                    (ROOT / "scenarios").glob("*.yaml"))
    assert main(["init", str(tmp_path / "demo")]) == 2  # no silent overwrite
    capsys.readouterr()
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "PydanticUndefined" not in out and "path = required" in out


def test_api_names_are_not_shadowed_by_submodules():
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(wirelessfl.__path__):
        importlib.import_module(f"wirelessfl.{mod.name}")
    for name in ("run", "load", "load_sweep", "sweep", "resolve_scenario"):
        assert callable(getattr(wirelessfl, name)), name
