"""The ``wandb`` logger: a Weights & Biases run, offline by default.

Offline mode writes the run under the results folder (``wandb/``) with no network;
``wandb sync`` uploads it later. The scenario goes in as the run's config, every
numeric metric per round (step = round), the summary's numbers at the end. The run
id is kept in the results folder (``wandb_run_id``), so ``--resume`` continues the
same run. A run that stops on an exception finishes its W&B run with exit code 1.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.loggers import Logger, flat_params, numeric, register_logger
from wirelessfl.observers import RoundRecord, RunEnd, RunStart

RUN_ID_FILE = "wandb_run_id"


class WandbParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["offline", "online", "disabled"] = Field(
        "offline", description="offline: no network, `wandb sync` later")
    project: str | None = Field(None, min_length=1, max_length=128,
                                description="project; default the scenario's name")


@register_logger("wandb")
class WandbLogger(Logger):
    """A Weights & Biases run (offline by default), resumable."""

    Params = WandbParams

    def on_start(self, start: RunStart) -> None:
        wandb = self.require("wandb")
        sc = self.scenario = start.scenario
        run_id = self.resumed_id(start, RUN_ID_FILE)
        self.run = wandb.init(project=self.params.project or sc.name,
                              name=f"{sc.name}-seed{sc.seed}", config=flat_params(sc),
                              mode=self.params.mode, id=run_id,
                              resume="must" if run_id else None,
                              dir=None if self.folder is None else str(self.folder),
                              reinit="create_new", settings=wandb.Settings(silent=True))
        if run_id is None:
            self.keep_id(RUN_ID_FILE, self.run.id)

    def on_round(self, record: RoundRecord) -> None:
        self.run.log(numeric(record.metrics), step=record.round)

    def on_end(self, end: RunEnd) -> None:
        for k, v in numeric({k: v for k, v in end.summary.items()
                             if not isinstance(v, dict)}).items():
            self.run.summary[k] = v
        self.run.finish()

    def on_error(self, error: BaseException) -> None:
        if hasattr(self, "run"):
            self.run.finish(exit_code=1)
