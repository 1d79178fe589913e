"""Experiment loggers: a plug-in kind; TensorBoard, MLflow and W&B against the real
packages (MLflow on a local file store, W&B offline)."""

from __future__ import annotations

import json

import pytest
import yaml

import wirelessfl
from wirelessfl.observers import Observer


class StopAt(Observer):
    """Stops the run after round ``k`` (an interruption, as a crash would)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def on_round(self, record) -> None:
        if record.round == self.k:
            raise RuntimeError("stopped on purpose")


def scenario_file(tmp_path, raw, **output):
    raw["output"] = {"plots": False, "save_adapter": False, **output}
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# ---------------------------------------------------------------------- tensorboard

def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc


def test_tensorboard_steps_are_rounds_and_wall_time_is_simulated_time(tiny_raw, tmp_path):
    pytest.importorskip("tensorboard")
    tiny_raw["output"] = {"loggers": ["tensorboard"], "plots": False, "save_adapter": False}
    run = wirelessfl.run(tiny_raw, output=tmp_path / "run", rounds=3)
    acc = events(tmp_path / "run" / "tensorboard")
    lat = acc.Scalars("round_latency_s")
    assert [e.step for e in lat] == [0, 1, 2]
    sim = run.metrics["sim_time_s"].tolist()
    assert [e.wall_time for e in lat] == pytest.approx(sim)  # "Relative" = simulated s
    # the hparams view: the scenario's parameters and the final metrics
    assert acc.PluginTagToContent("hparams")


def test_tensorboard_runs_without_a_folder_do_not_merge(tiny_raw, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    monkeypatch.chdir(tmp_path)
    tiny_raw["output"] = {"loggers": ["tensorboard"], "plots": False}
    wirelessfl.run(tiny_raw, output=None, rounds=2)
    wirelessfl.run(tiny_raw, output=None, rounds=2)
    runs = sorted((tmp_path / "runs" / "tensorboard").iterdir())
    assert len(runs) == 2
    for r in runs:
        assert [e.step for e in events(r).Scalars("round_latency_s")] == [0, 1]


def test_tensorboard_dir_option(tiny_raw, tmp_path):
    pytest.importorskip("tensorboard")
    tiny_raw["output"] = {"loggers": ["tensorboard"], "plots": False, "save_adapter": False,
                          "logger_options": {"tensorboard": {"dir": str(tmp_path / "tb"),
                                                             "hparams": False}}}
    wirelessfl.run(tiny_raw, output=tmp_path / "run", rounds=2)
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert [e.step for e in events(tmp_path / "tb").Scalars("round_latency_s")] == [0, 1]


# ---------------------------------------------------------------------- mlflow

@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield mlflow
    while mlflow.active_run() is not None:
        mlflow.end_run()


def all_runs(mlflow):
    client = mlflow.MlflowClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids)


def test_mlflow_logs_params_metrics_and_artifacts(tiny_raw, tmp_path, mlflow_store):
    tiny_raw["output"] = {"loggers": ["mlflow"], "plots": True, "save_adapter": True}
    wirelessfl.run(tiny_raw, output=tmp_path / "run", rounds=2)
    (run,) = all_runs(mlflow_store)
    assert run.info.status == "FINISHED"
    assert run.data.params["rounds"] == "2"
    client = mlflow_store.MlflowClient()
    hist = client.get_metric_history(run.info.run_id, "round_latency_s")
    assert [m.step for m in hist] == [0, 1]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.csv", "summary.json", "plots", "adapter"} <= names
    assert (tmp_path / "run" / "mlflow_run_id").read_text().strip() == run.info.run_id


def test_mlflow_ends_its_run_on_error_and_the_next_run_starts(tiny_raw, mlflow_store):
    tiny_raw["output"] = {"loggers": ["mlflow"], "plots": False}
    with pytest.raises(RuntimeError, match="on purpose"):
        wirelessfl.run(tiny_raw, output=None, rounds=3, observers=[StopAt(1)])
    assert mlflow_store.active_run() is None
    wirelessfl.run(tiny_raw, output=None, rounds=2)  # no "already active"
    status = sorted(r.info.status for r in all_runs(mlflow_store))
    assert status == ["FAILED", "FINISHED"]


def test_mlflow_nests_inside_the_users_run(tiny_raw, mlflow_store):
    tiny_raw["output"] = {"loggers": ["mlflow"], "plots": False}
    mlflow_store.set_experiment("mine")
    with mlflow_store.start_run(run_name="sweep") as parent:
        wirelessfl.run(tiny_raw, output=None, rounds=2)
        assert mlflow_store.active_run().info.run_id == parent.info.run_id
    runs = {r.info.run_name: r for r in all_runs(mlflow_store)}
    child = runs[f"{tiny_raw.get('name', 'scenario')}-seed{tiny_raw.get('seed', 0)}"]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.info.status == "FINISHED"


def test_mlflow_resume_continues_the_same_run(tiny_raw, tmp_path, mlflow_store):
    from wirelessfl.cli import main

    sc = scenario_file(tmp_path, tiny_raw, loggers=["mlflow"])
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError):
        wirelessfl.run(str(sc), output=run_dir, observers=[StopAt(2)])
    assert main(["run", str(sc), "--out", str(run_dir), "--resume", "-q"]) == 0
    (run,) = all_runs(mlflow_store)
    assert run.info.status == "FINISHED"
    steps = [m.step for m in mlflow_store.MlflowClient().get_metric_history(
        run.info.run_id, "round_latency_s")]
    assert sorted(set(steps)) == list(range(tiny_raw["rounds"]))


# ---------------------------------------------------------------------- wandb

def test_wandb_offline_run_in_the_results_folder(tiny_raw, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    tiny_raw["output"] = {"loggers": ["wandb"], "plots": False, "save_adapter": False}
    wirelessfl.run(tiny_raw, output=tmp_path / "run", rounds=2)
    run_id = (tmp_path / "run" / "wandb_run_id").read_text().strip()
    offline = list((tmp_path / "run" / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(offline) == 1 and any(offline[0].glob("*.wandb"))


# ---------------------------------------------------------------------- the plug-in kind

def test_loggers_are_a_plugin_kind(tiny_raw, tmp_path, capsys):
    from wirelessfl.cli import main

    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "experiment loggers (output.loggers)" in out
    for name in ("tensorboard", "mlflow", "wandb"):
        assert name in out


@pytest.mark.parametrize("output, key", [
    ({"loggers": ["nope"]}, "output.loggers"),
    ({"loggers": ["tensorboard"], "logger_options": {"tensorboard": {"bogus": 1}}},
     "output.logger_options.tensorboard"),
    ({"loggers": [], "logger_options": {"mlflow": {}}}, "output"),
    ({"loggers": ["mlflow", "mlflow"]}, "output"),
])
def test_bad_logger_settings_get_one_line(tiny_raw, tmp_path, capsys, output, key):
    from wirelessfl.cli import main

    sc = scenario_file(tmp_path, tiny_raw, **output)
    assert main(["validate", str(sc)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {key}")


def test_a_logger_of_ones_own_by_module_and_class(tiny_raw, tmp_path, monkeypatch):
    (tmp_path / "mylog.py").write_text(
        "import json\n"
        "from wirelessfl.loggers import Logger\n"
        "class Lines(Logger):\n"
        "    def on_round(self, record):\n"
        "        with open(self.folder / 'lines.jsonl', 'a') as fh:\n"
        "            fh.write(json.dumps({'round': record.round}) + '\\n')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tiny_raw["output"] = {"loggers": ["mylog:Lines"], "plots": False, "save_adapter": False}
    wirelessfl.run(tiny_raw, output=tmp_path / "run", rounds=2)
    rows = [json.loads(x) for x in (tmp_path / "run" / "lines.jsonl").read_text().splitlines()]
    assert rows == [{"round": 0}, {"round": 1}]
