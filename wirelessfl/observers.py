"""Observers: what the round loop reports to, without knowing who listens.

:class:`wirelessfl.runner.RoundLoop` plays the rounds and the session around it calls
every observer:

* ``on_start(start)`` once, with a :class:`RunStart` (scenario, extra tables,
  warnings),
* ``on_round(record)`` after each round, with a :class:`RoundRecord` (the
  ``metrics.csv`` row, the ``clients.csv`` rows and the ``events.jsonl`` records),
* ``on_end(end)`` once, with a :class:`RunEnd` (the summary, the final adapter),
  or ``on_error(error)`` when the run stops on an exception,
* ``on_folder(path)`` when the results folder is complete (plots included).

The built-ins: :class:`ResultsObserver` (the results folder), :class:`MemoryObserver`
(everything kept in memory, for the Python API), :class:`ProgressObserver` (a tqdm
bar), :class:`LoggingObserver` (standard :mod:`logging`, logger ``"wirelessfl"``),
and the experiment trackers of :mod:`wirelessfl.loggers` (``output.loggers``).
Write your own by subclassing :class:`Observer` and passing it to
``wirelessfl.run(..., observers=[...])``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("wirelessfl")


@dataclass
class RunStart:
    """The start of a run.

    Attributes
    ----------
    scenario : Scenario
        The resolved scenario (after the controller's offline stage).
    tables : dict of str to list of dict
        Tables decided before round 0 (e.g. ``tsfa_offline``).
    events : list of dict
        Records for ``events.jsonl`` before round 0 (warnings, ``round = -1``).
    resumed_at : int or None
        The first round played, when the run resumes from a checkpoint.
    quality : str
        The metric the task is judged by (``accuracy``; ``perplexity`` for a causal LM).
    """

    scenario: Any
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    resumed_at: int | None = None
    quality: str = "accuracy"


@dataclass
class RoundRecord:
    """One finished round.

    Attributes
    ----------
    round : int
    metrics : dict
        The ``metrics.csv`` row.
    clients : list of dict
        The ``clients.csv`` rows, one per selected client.
    events : list of dict
        The ``events.jsonl`` records of the round, in order.
    """

    round: int
    metrics: dict[str, Any]
    clients: list[dict[str, Any]]
    events: list[dict[str, Any]]


@dataclass
class RunEnd:
    """The end of a run: ``summary`` (``summary.json``), the final adapter ``state``
    (parameter name -> tensor) and ``save_adapter(path)`` writing it as a peft folder."""

    summary: dict[str, Any]
    state: dict[str, Any]
    save_adapter: Callable[[Path], None]


class Observer:
    """Receives a run's start, rounds and end; every method does nothing by default."""

    def on_start(self, start: RunStart) -> None:
        """Before round 0."""

    def on_round(self, record: RoundRecord) -> None:
        """After each round."""

    def on_end(self, end: RunEnd) -> None:
        """After the last round."""

    def on_error(self, error: BaseException) -> None:
        """When the run stops on an exception (after ``on_start``, instead of
        ``on_end``); the exception is raised on afterwards."""

    def on_folder(self, path: Path) -> None:
        """When the results folder is complete (summary and plots); never for a run
        without a folder."""


class ResultsObserver(Observer):
    """Writes the results folder through a :class:`wirelessfl.results.ResultsWriter`.

    ``summary.json`` is written last (after the adapter): its presence marks a
    finished run. Host timings go to ``timings.jsonl``, so ``events.jsonl`` is the
    same on every rerun. On a resumed run, ``on_start`` writes nothing (the folder
    already holds the start).
    """

    def __init__(self, writer: Any, save_adapter: bool = True) -> None:
        self.writer = writer
        self.save_adapter = save_adapter

    def on_start(self, start: RunStart) -> None:
        if start.resumed_at is not None:
            return
        self.writer.write_config(start.scenario.to_yaml())
        for ev in start.events:
            self.writer.event(ev)
        for name, rows in start.tables.items():
            self.writer.append_rows(name, rows)

    def on_round(self, record: RoundRecord) -> None:
        self.writer.append_rows("metrics", [record.metrics])
        self.writer.append_rows("clients", record.clients)
        for ev in record.events:
            if ev.get("event") == "timing":  # host time: kept apart from the deterministic log
                self.writer.timing(ev)
            else:
                self.writer.event(ev)

    def on_end(self, end: RunEnd) -> None:
        if self.save_adapter:
            end.save_adapter(self.writer.path / "adapter")
        self.writer.write_summary(end.summary)


class MemoryObserver(Observer):
    """Keeps every row, event, table and the summary in memory."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.metrics: list[dict[str, Any]] = []
        self.clients: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.summary: dict[str, Any] = {}
        self.state: dict[str, Any] | None = None

    def on_start(self, start: RunStart) -> None:
        self.config = start.scenario.model_dump(mode="json")
        self.tables = {k: list(v) for k, v in start.tables.items()}
        self.events.extend(start.events)

    def on_round(self, record: RoundRecord) -> None:
        self.metrics.append(record.metrics)
        self.clients.extend(record.clients)
        self.events.extend(record.events)

    def on_end(self, end: RunEnd) -> None:
        """Keeps the summary and the final adapter exactly as a results folder holds it
        (saved to a temporary folder and read back, so names and values match)."""
        import tempfile

        from safetensors.torch import load_file

        self.summary = end.summary
        with tempfile.TemporaryDirectory() as tmp:
            end.save_adapter(Path(tmp) / "adapter")
            self.state = load_file(str(Path(tmp) / "adapter" / "adapter_model.safetensors"))


class ProgressObserver(Observer):
    """A tqdm progress bar over the rounds (simulated time and quality as postfix)."""

    def __init__(self, position: int | None = None, leave: bool = True) -> None:
        self.position = position
        self.leave = leave
        self.bar: Any = None
        self.quality = "accuracy"

    def on_start(self, start: RunStart) -> None:
        from tqdm.auto import tqdm

        self.quality = start.quality
        sc = start.scenario
        self.bar = tqdm(total=sc.rounds, initial=start.resumed_at or 0, desc=sc.name,
                        unit="round", dynamic_ncols=True,
                        position=self.position, leave=self.leave)

    def on_round(self, record: RoundRecord) -> None:
        value = record.metrics.get(self.quality, math.nan)
        short = {"accuracy": "acc", "perplexity": "ppl"}.get(self.quality, self.quality)
        self.bar.set_postfix(sim_s=f"{record.metrics['sim_time_s']:.1f}",
                             **{short: f"{value:.3f}"}, refresh=False)
        self.bar.update(1)

    def on_end(self, end: RunEnd) -> None:
        self.bar.close()


class LoggingObserver(Observer):
    """Standard logging on logger ``"wirelessfl"``.

    Warnings (``event = warning``) and the first controller fallback are WARNING;
    each round's headline numbers are INFO; drops and later fallbacks are DEBUG; the
    end says how many fallbacks there were and whether anything was aggregated.
    """

    def __init__(self, logger: logging.Logger = log) -> None:
        self.log = logger
        self.fallbacks = 0
        self.aggregated = 0
        self.rounds = 0
        self.quality = "accuracy"

    def on_start(self, start: RunStart) -> None:
        self.quality = start.quality
        sc = start.scenario
        self.log.info("run %s: %d clients, %d rounds, %s / %s / %s", sc.name, sc.clients.count,
                      sc.rounds, sc.method.aggregator, sc.method.compressor,
                      sc.method.controller)
        for ev in start.events:
            if ev.get("event") == "warning":
                self.log.warning("%s", ev["message"])

    def on_round(self, record: RoundRecord) -> None:
        m = record.metrics
        self.rounds += 1
        self.aggregated += int(m.get("received", 0) > 0)
        self.log.info("round %d: sim %.3f s, latency %.4f s, received %d/%d, %s %.4f",
                      record.round, m["sim_time_s"], m["round_latency_s"], m["received"],
                      m["selected"], self.quality, m.get(self.quality, math.nan))
        for ev in record.events:
            kind = ev.get("event")
            if kind == "controller_fallback":
                self.fallbacks += 1
                level = logging.WARNING if self.fallbacks == 1 else logging.DEBUG
                self.log.log(level, "round %d: controller fell back (%s)", record.round,
                             ", ".join(f"{k}={v}" for k, v in ev.items()
                                       if k not in ("round", "event")))
            elif kind == "drop":
                self.log.debug("round %d: client %d dropped (%s)", record.round, ev["client"],
                               ev["reason"])
            elif kind == "warning":
                self.log.warning("round %d: %s", record.round, ev["message"])

    def on_end(self, end: RunEnd) -> None:
        if self.fallbacks > 1:
            self.log.warning("the controller fell back in %d of %d rounds (events.jsonl)",
                             self.fallbacks, self.rounds)
        if self.rounds and not self.aggregated:
            self.log.warning("no update was aggregated in any round: the final model is the "
                             "initial one")
        s = end.summary
        q = s.get("quality_metric", "accuracy")
        self.log.info("%s: final %s %.4f after %.3f simulated s", s["name"], q,
                      s.get(f"final_{q}", math.nan), s["sim_time_s"])
