"""The ``mlflow`` logger: one MLflow run per simulation, ended whatever happens.

The scenario goes in as parameters, every numeric metric per round (step = round)
and the summary's numbers at the end; the results folder's files (scenario,
tables, plots, adapter) as artifacts once the folder is complete. Inside a user's
own active MLflow run it opens a nested run. The run id is kept in the results
folder (``mlflow_run_id``), so ``--resume`` continues the same MLflow run. A run
that stops on an exception ends its MLflow run as ``FAILED``, so the next run in
the same process starts cleanly.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.loggers import Logger, flat_params, numeric, register_logger
from wirelessfl.observers import RoundRecord, RunEnd, RunStart

RUN_ID_FILE = "mlflow_run_id"


class MLflowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tracking_uri: str | None = Field(None, min_length=1, max_length=4096,
                                     description="tracking URI; default MLflow's own "
                                     "(MLFLOW_TRACKING_URI)")
    experiment: str | None = Field(None, min_length=1, max_length=500,
                                   description="experiment name; default the scenario's name")
    artifacts: bool = Field(True, description="log the results folder's files at the end")


@register_logger("mlflow")
class MLflowLogger(Logger):
    """An MLflow run: parameters, metrics per round, artifacts; nested, resumable."""

    Params = MLflowParams

    def on_start(self, start: RunStart) -> None:
        self.mlflow = mlflow = self.require("mlflow")
        sc = self.scenario = start.scenario
        if self.params.tracking_uri is not None:
            mlflow.set_tracking_uri(self.params.tracking_uri)
        run_id = self.resumed_id(start, RUN_ID_FILE)
        nested = mlflow.active_run() is not None
        if run_id is None:
            if not nested:  # a nested run stays in its parent's experiment
                mlflow.set_experiment(self.params.experiment or sc.name)
            run = mlflow.start_run(run_name=f"{sc.name}-seed{sc.seed}", nested=nested)
            mlflow.log_params(flat_params(sc))
            self.keep_id(RUN_ID_FILE, run.info.run_id)
        else:
            run = mlflow.start_run(run_id=run_id, nested=nested)
        self.run_id = run.info.run_id
        self.open_run = True

    def on_round(self, record: RoundRecord) -> None:
        self.mlflow.log_metrics(numeric(record.metrics), step=record.round,
                                run_id=self.run_id)

    def on_end(self, end: RunEnd) -> None:
        self.mlflow.log_metrics(numeric({k: v for k, v in end.summary.items()
                                         if not isinstance(v, dict)}), run_id=self.run_id)
        if self.folder is None or not self.params.artifacts:
            self._close("FINISHED")

    def on_folder(self, path: Path) -> None:
        if self.params.artifacts and getattr(self, "open_run", False):
            for item in sorted(path.iterdir()):
                if item.name.startswith(".") or item.name in ("checkpoint.pt", "tensorboard"):
                    continue
                if item.is_dir():
                    self.mlflow.log_artifacts(str(item), artifact_path=item.name,
                                              run_id=self.run_id)
                else:
                    self.mlflow.log_artifact(str(item), run_id=self.run_id)
        self._close("FINISHED")

    def on_error(self, error: BaseException) -> None:
        self._close("FAILED")

    def _close(self, status: str) -> None:
        if not getattr(self, "open_run", False):
            return
        self.open_run = False
        active = self.mlflow.active_run()
        if active is not None and active.info.run_id == self.run_id:
            self.mlflow.end_run(status=status)
        else:  # not the active run any more: end it by id
            self.mlflow.MlflowClient().set_terminated(self.run_id, status=status)
