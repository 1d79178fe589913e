"""Experiments: sweeps (parallel, failures, resume), summaries, confidence bands, figures."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from wirelessfl.analysis import find_runs, group_runs, mean_ci, summarize, time_to_target
from wirelessfl.cli import main
from wirelessfl.sweeper import combinations, parse_grid, run_name, split_values


def test_confidence_band_on_synthetic_numbers():
    v = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 7.0], [5.0, 6.0, 9.0]])
    mean, lo, hi = mean_ci(v)
    # n = 3, sd = 2, t_{0.975, 2} = 4.302653: half width 4.302653 * 2 / sqrt(3) = 4.968275
    assert mean[:2].tolist() == [3.0, 4.0]
    assert hi[0] - mean[0] == pytest.approx(4.968275, abs=1e-6)
    assert mean[0] - lo[0] == pytest.approx(4.968275, abs=1e-6)
    # the NaN is ignored: n = 2, sd = sqrt(2), t_{0.975, 1} = 12.7062
    assert mean[2] == 8.0 and hi[2] - 8.0 == pytest.approx(12.7062 * np.sqrt(2) / np.sqrt(2),
                                                          rel=1e-4)
    one_mean, one_lo, one_hi = mean_ci(v[:1])
    assert np.array_equal(one_lo[:2], one_mean[:2]) and np.array_equal(one_hi[:2], one_mean[:2])


def test_group_labels_name_only_what_each_group_sets():
    from pathlib import Path

    from wirelessfl.analysis import Run

    def run(seed, controller, options):
        return Run(Path(f"r{seed}{controller}"), {"seed": seed, "method": {
            "controller": controller, "controller_options": options}}, [])

    runs = [run(0, "minmax", {}), run(1, "minmax", {}), run(0, "tsfa", {"v": 1.0}),
            run(0, "tsfa", {"v": 2.0}), run(1, "tsfa", {"v": 2.0})]
    groups = {g.label: [r.config["seed"] for r in g.runs] for g in group_runs(runs)}
    assert groups == {"controller=minmax": [0, 1], "controller=tsfa, v=1.0": [0],
                      "controller=tsfa, v=2.0": [0, 1]}
    # groups that differ only by an unset value keep distinct labels
    twins = group_runs([run(0, "x", None), run(0, "x", {})])
    assert len(twins) == 2 and twins[0].label != twins[1].label


def test_grid_parsing_and_names():
    assert split_values("a,[1, 2],{x: 1},b") == ["a", "[1, 2]", "{x: 1}", "b"]
    grid = parse_grid(["method.aggregator=fedit,flora", "seed=0,1,2"])
    combos = combinations(grid)
    assert len(combos) == 6 and combos[0] == [("method.aggregator", "fedit"), ("seed", "0")]
    assert run_name(combos[-1]) == "aggregator-flora__seed-2"
    with pytest.raises(Exception, match="--grid"):
        parse_grid(["seed"])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from tests.conftest import TINY

    root = tmp_path_factory.mktemp("sweep")
    raw = json.loads(json.dumps(TINY))
    raw["controller"] = {"latency_budget_s": 0.05}
    raw["output"] = {"plots": False, "save_adapter": False}
    scen = root / "s.yaml"
    scen.write_text(yaml.safe_dump(raw))
    out = root / "sw"
    code = main(["sweep", str(scen), "--grid", "method.aggregator=fedit,ffa",
                 "--grid", "seed=0,1", "--jobs", "2", "--out", str(out), "--quiet"])
    return scen, out, code


def read_index(out):
    with (out / "sweep.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_sweep_runs_every_combination_in_parallel(sweep):
    _, out, code = sweep
    assert code == 0
    rows = read_index(out)
    assert sorted(r["run"] for r in rows) == [
        "aggregator-fedit__seed-0", "aggregator-fedit__seed-1",
        "aggregator-ffa__seed-0", "aggregator-ffa__seed-1"]
    assert all(r["status"] == "done" for r in rows)
    assert all((out / r["run"] / "summary.json").is_file() for r in rows)


def test_sweep_resumes_and_records_failures(sweep, capsys):
    scen, out, _ = sweep
    code = main(["sweep", str(scen), "--grid", "method.aggregator=fedit,ffa", "--grid",
                 "seed=0,1", "--out", str(out), "--quiet"])
    assert code == 0
    assert all(r["status"] == "skipped (done)" for r in read_index(out))
    # a value that validates but fails at run time (too few examples)
    code = main(["sweep", str(scen), "--grid", "data.partition.min_samples=1,100000",
                 "--out", str(out / "bad"), "--quiet"])
    rows = {r["run"]: r for r in read_index(out / "bad")}
    assert code == 1
    assert rows["min_samples-1"]["status"] == "done"
    assert rows["min_samples-100000"]["status"] == "failed"
    assert "min_samples" in rows["min_samples-100000"]["error"]


def test_resume_refuses_runs_made_from_another_scenario(sweep, capsys):
    scen, out, _ = sweep
    before = (out / "sweep.csv").read_bytes()
    metrics = (out / "aggregator-ffa__seed-1" / "metrics.csv").read_bytes()
    code = main(["sweep", str(scen), "--grid", "method.aggregator=fedit,ffa", "--grid",
                 "seed=0,1", "--set", "clients.local_steps=3", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "clients.local_steps" in err and "another --out" in err
    assert (out / "sweep.csv").read_bytes() == before
    assert (out / "aggregator-ffa__seed-1" / "metrics.csv").read_bytes() == metrics


def test_sweep_stops_on_a_user_mistake_before_running(sweep, tmp_path, capsys):
    scen, _, _ = sweep
    code = main(["sweep", str(scen), "--grid", "method.aggregator=fedit,nope", "--out",
                 str(tmp_path / "x"), "--quiet"])
    assert code == 2 and "method.aggregator" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_groups_and_summary(sweep, tmp_path, capsys):
    _, out, _ = sweep
    groups = group_runs(find_runs([out]))
    assert sorted(g.label for g in groups) == ["aggregator=fedit", "aggregator=ffa"]
    assert all(len(g.runs) == 2 for g in groups)
    rows = summarize(groups, target=0.0)
    assert all(r["seeds"] == 2 for r in rows)
    assert all(r["reached_0"] == "2/2" for r in rows)
    assert all(r["reached_1.01"] == "0/2" and np.isnan(r["time_to_1.01_s"])
               for r in summarize(groups, target=1.01))
    run = groups[0].runs[0]
    assert time_to_target(run, 0.0) == pytest.approx(float(run.metrics[0]["sim_time_s"]))
    assert np.isnan(time_to_target(run, 1.01))
    assert main(["summarize", str(out), "--target", "0.3", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert "aggregator=ffa" in text and "±" in text and "time_to_0.3_s" in text
    assert "reached_0.3" in text


def test_every_figure_type_is_drawn(sweep, tmp_path):
    _, out, _ = sweep
    assert main(["plot", str(out), "--out", str(tmp_path), "--round", "1"]) == 0
    for stem in ("accuracy_vs_latency", "accuracy_vs_uplink_bits", "accuracy_vs_round",
                 "latency_vs_budget", "allocation_aggregator-fedit",
                 "allocation_aggregator-ffa", "round_timeline"):
        assert (tmp_path / f"{stem}.png").is_file(), stem
        assert (tmp_path / f"{stem}.pdf").is_file(), stem
    # no controller of this sweep keeps a latency queue: no queue figure
    assert not (tmp_path / "queue.png").exists()


@pytest.fixture
def saved_figures(monkeypatch):
    """The figures plotting saves, by stem, while a test draws them (still saved)."""
    from wirelessfl import plotting

    saved = {}
    real = plotting._save

    def keep(fig, folder, stem):
        saved[stem] = fig
        return real(fig, folder, stem)

    monkeypatch.setattr(plotting, "_save", keep)
    return saved


def test_figures_clip_bands_state_n_and_draw_the_queue_only_for_queue_controllers(
        sweep, tmp_path, saved_figures):
    """95% bands stay inside [0, 1] for accuracy and at or above 0 for latencies; the
    legend says how many runs and which interval; TSFA's queue is drawn; the
    allocation heatmap has whole-number client and round ticks."""
    import json as _json

    import matplotlib.collections

    import wirelessfl
    from wirelessfl import plotting
    from wirelessfl.analysis import find_runs, group_runs

    _, out, _ = sweep
    groups = group_runs(find_runs([out]))
    saved = saved_figures
    plotting.plot_quality(groups, tmp_path)
    plotting.plot_latency(groups, tmp_path)
    plotting.plot_allocations(groups, tmp_path)
    ax = saved["accuracy_vs_round"].axes[0]
    bands = [c for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)]
    assert bands
    for c in bands:
        y = np.concatenate([p.vertices[:, 1] for p in c.get_paths()])
        assert y.min() >= 0.0 and y.max() <= 1.0
    assert all("(n=2, 95% CI)" in t.get_text() for t in ax.get_legend().get_texts())
    heat = saved["allocation_aggregator-fedit"].axes[0]
    assert all(float(t).is_integer() for t in heat.get_yticks())
    raw = _json.loads(_json.dumps(__import__("tests.conftest", fromlist=["TINY"]).TINY))
    raw.update(rounds=3)
    raw["method"] = {"aggregator": "fedit", "compressor": "soft", "controller": "tsfa"}
    raw["controller"] = {"latency_budget_s": 0.01}
    wirelessfl.run(raw, output=tmp_path / "tsfa")
    assert main(["plot", str(tmp_path / "tsfa"), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "queue.png").is_file()


def test_legend_labels_are_renamed_and_time_has_its_spread(sweep, tmp_path, capsys,
                                                           saved_figures):
    """--label renames a group by one of its key=value parts; an unknown one is one
    line naming --label; accuracy against simulated time shows each point's 95%
    interval in time (horizontal bars), accuracy against round none."""
    import matplotlib.collections


    _, out, _ = sweep
    saved = saved_figures
    assert main(["plot", str(out), "--out", str(tmp_path / "a"), "--label",
                 "aggregator=fedit=FedIT", "--label", "aggregator=ffa=FFA-LoRA"]) == 0
    ax = saved["accuracy_vs_latency"].axes[0]
    texts = sorted(t.get_text() for t in ax.get_legend().get_texts())
    assert texts == ["FFA-LoRA (n=2, 95% CI)", "FedIT (n=2, 95% CI)"]
    bars = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert bars and all(len(b.get_segments()) > 0 for b in bars)
    widths = np.concatenate([[abs(s[1][0] - s[0][0]) for s in b.get_segments()] for b in bars])
    assert np.all(widths >= 0) and widths.max() > 0  # the seeds' times differ
    rounds = saved["accuracy_vs_round"].axes[0]
    assert not [c for c in rounds.collections
                if isinstance(c, matplotlib.collections.LineCollection)]
    capsys.readouterr()
    assert main(["plot", str(out), "--out", str(tmp_path / "b"), "--label", "nope=X"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --label") and "aggregator=" in err
    assert main(["plot", str(out), "--out", str(tmp_path / "b"), "--label", "noequals"]) == 2


def test_run_plot_labels_its_axes_with_units(sweep):
    import wirelessfl
    from wirelessfl.plotting import axis_label

    _, out, _ = sweep
    run = wirelessfl.load(next(p.parent for p in sorted(out.rglob("summary.json"))))
    fig = run.plot("round_latency_s", x="cum_uplink_bits")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "cumulative uplink (bit)"
    assert ax.get_ylabel() == "round latency (s)"
    assert axis_label("tx_energy_j") == "tx energy (J)" and axis_label("sim_time_s") == \
        "simulated time (s)" and axis_label("accuracy") == "test accuracy"


def test_plot_rejects_a_folder_without_runs(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "holds no results folders" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["compare.py", "compare_aggregators.py",
                                    "reproduce_paper.py"])
def test_scripts_report_a_user_mistake_in_one_line(script, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parent.parent
    args = {"compare.py": ["--preset", "aggregators", "--set", "clients.count=-1"],
            "compare_aggregators.py": ["--set", "clients.count=-1"],
            "reproduce_paper.py": ["--smoke", "--out", str(tmp_path)]}[script]
    if script == "reproduce_paper.py":  # a finished run made from another scenario
        sys.path.insert(0, str(root / "scripts"))
        import reproduce_paper

        name, scen, grid, sets = reproduce_paper.studies(
            reproduce_paper.argparse.Namespace(smoke=True, full=False),
            reproduce_paper.scale(reproduce_paper.argparse.Namespace(smoke=True,
                                                                      full=False)))[0]
        assert main(["sweep", scen, *sum((["--grid", g] for g in grid), []),
                     *sum((["--set", s] for s in [*sets, "clients.local_steps=1"]), []),
                     "--out", str(tmp_path / "runs" / name), "--quiet"]) == 0
    proc = subprocess.run([sys.executable, str(root / "scripts" / script), *args],
                          capture_output=True, text=True, cwd=root, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
    assert ("clients.count" if script != "reproduce_paper.py" else "clients.local_steps") \
        in proc.stderr


@pytest.mark.slow
def test_reproduce_paper_smoke_writes_the_figure_set(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))
    import reproduce_paper

    reproduce_paper.main(["--smoke", "--out", str(tmp_path)])
    for stem in ("accuracy_vs_latency", "latency_vs_budget", "communication", "rank_choice",
                 "florist_download"):
        assert (tmp_path / f"{stem}.png").is_file(), stem
