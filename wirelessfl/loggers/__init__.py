"""Experiment trackers as a plug-in kind (``output.loggers``, ``output.logger_options``).

A logger is an :class:`~wirelessfl.observers.Observer` with options: it is built
(and its options checked) with the scenario, then :meth:`Logger.open` hands it the
results folder (None for an in-memory run) before the run starts. Built-ins:
``tensorboard``, ``mlflow`` and ``wandb`` (each needs its package). A package adds
one under the entry-point group ``wirelessfl.loggers``; a ``module:Class`` name works
too.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any

from wirelessfl.errors import MissingPackageError
from wirelessfl.observers import Observer
from wirelessfl.registry import NoParams, Registry
from wirelessfl.results import replacing


class Logger(Observer):
    """Base class of the experiment trackers.

    Subclasses set ``Params`` (a pydantic model of their options) and override the
    :class:`~wirelessfl.observers.Observer` hooks; :meth:`open` runs first.
    """

    Params = NoParams
    name = ""

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()
        self.folder: Path | None = None
        self.scenario: Any = None

    def open(self, folder: Path | None, scenario: Any) -> None:
        """The run's results folder (None: an in-memory run) and its scenario."""
        self.folder, self.scenario = folder, scenario

    def require(self, module: str) -> Any:
        """Import ``module`` of the tracker's optional package (the package and the extra
        are named after the logger), or fail in one line naming ``output.loggers``."""
        try:
            return importlib.import_module(module)
        except ImportError:
            raise MissingPackageError("output.loggers", f"{self.name} needs the package "
                                      f"{self.name}: pip install 'wirelessfl[{self.name}]'"
                                      ) from None

    def resumed_id(self, start: Any, file: str) -> str | None:
        """The tracker's run id kept in the folder's ``file``, when this run resumes one."""
        path = None if self.folder is None else self.folder / file
        if start.resumed_at is None or path is None or not path.is_file():
            return None
        return path.read_text().strip() or None

    def keep_id(self, file: str, run_id: str) -> None:
        """Keep the tracker's run id in the folder (for a later ``--resume``), written
        whole or not at all."""
        if self.folder is not None:
            with replacing(self.folder / file) as fh:
                fh.write(run_id + "\n")


LOGGERS: Registry[Logger] = Registry("logger", Logger)
register_logger = LOGGERS.register


def numeric(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a row (booleans, text and the round left out)."""
    return {k: float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "round"
            and math.isfinite(float(v))}


def flat_params(scenario: Any, limit: int = 500) -> dict[str, Any]:
    """The scenario as flat ``section.key`` parameters: numbers and booleans kept,
    everything else as text of at most ``limit`` characters."""
    from wirelessfl.analysis import flatten

    out: dict[str, Any] = {}
    for k, v in flatten(scenario.model_dump(mode="json")).items():
        out[k] = v if isinstance(v, (int, float, bool)) else str(v)[:limit]
    return out


from wirelessfl.loggers import mlflow, tensorboard, wandb  # noqa: E402,F401  (register)
