"""The ``tensorboard`` logger: every numeric metric per round, on two x-axes.

Each scalar is written with the round as its step and the **simulated** time as its
wall time, so TensorBoard's x-axis "Step" shows rounds and "Relative" shows
simulated seconds (the time axis this simulator is about). At the end the
scenario's parameters and the final metrics go to the hparams view, so the runs of a
sweep under one log folder compare there. A resumed run drops what its first
attempt wrote after the checkpoint (``purge_step``).
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.loggers import Logger, flat_params, numeric, register_logger
from wirelessfl.observers import RoundRecord, RunEnd, RunStart

_COUNTER = itertools.count()


class TensorBoardParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dir: str | None = Field(
        None, min_length=1, max_length=4096,
        description="log folder; default <run>/tensorboard, and for a run without a "
        "results folder runs/tensorboard/<name>-seed<seed>-<time>-<n> (one per run)")
    hparams: bool = Field(True, description="the scenario and final metrics in the "
                          "hparams view")


@register_logger("tensorboard")
class TensorBoardLogger(Logger):
    """TensorBoard scalars (step = round, wall time = simulated time) and hparams."""

    Params = TensorBoardParams

    def log_dir(self) -> Path:
        """Where this run writes."""
        if self.params.dir is not None:
            return Path(self.params.dir)
        if self.folder is not None:
            return self.folder / "tensorboard"
        sc = self.scenario
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Path("runs") / "tensorboard" / (f"{sc.name}-seed{sc.seed}-{stamp}-{os.getpid()}"
                                               f"-{next(_COUNTER)}")

    def on_start(self, start: RunStart) -> None:
        SummaryWriter = self.require("torch.utils.tensorboard").SummaryWriter  # noqa: N806
        self.scenario = start.scenario
        self.path = self.log_dir()
        self.writer = SummaryWriter(log_dir=str(self.path), purge_step=start.resumed_at)

    def on_round(self, record: RoundRecord) -> None:
        sim_s = float(record.metrics.get("sim_time_s", 0.0))
        for k, v in numeric(record.metrics).items():
            self.writer.add_scalar(k, v, record.round, walltime=sim_s)

    def on_end(self, end: RunEnd) -> None:
        final = numeric({k: v for k, v in end.summary.items() if not isinstance(v, dict)})
        if self.params.hparams:
            self.writer.add_hparams(flat_params(self.scenario),
                                    {f"final/{k}": v for k, v in final.items()}, run_name=".")
        self.writer.close()

    def on_error(self, error: BaseException) -> None:
        if hasattr(self, "writer"):
            self.writer.close()
