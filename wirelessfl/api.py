"""The Python API: run, load and sweep scenarios from a script or a notebook.

The command line is a thin layer over these functions::

    import wirelessfl

    r = wirelessfl.run("scenarios/smoke.yaml", rounds=2, output=None)   # in memory
    r.metrics.tail()                     # pandas DataFrame, one row per round
    r.plot("accuracy", x="sim_time_s")   # a matplotlib Figure (backend untouched)

    r = wirelessfl.load("results/smoke")                 # a finished run folder
    df = wirelessfl.load_sweep("results/sweeps/smoke")   # a sweep, one tidy table

Overrides are keyword arguments; a nested key is written with ``__`` for the dot
(``clients__count=20`` is ``--set clients.count=20``), or passed in ``set=``.
Every user mistake raises :class:`wirelessfl.errors.WirelessFLError` with the
one-line message the CLI prints.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from wirelessfl.errors import ScenarioError, WirelessFLError
from wirelessfl.results import finished_summary

DEFAULT = "default"  # ``output=DEFAULT``: the scenario's own output.dir


@dataclass(repr=False)
class Run:
    """One run's results, in memory or read back from its folder.

    Attributes
    ----------
    config : dict
        The resolved scenario.
    metrics : pandas.DataFrame
        One row per round (``metrics.csv``).
    clients : pandas.DataFrame
        One row per selected client per round (``clients.csv``).
    summary : dict
        Final numbers (``summary.json``); empty for an unfinished run.
    events : list of dict
        Drops, fallbacks, timelines (``events.jsonl``).
    tables : dict of str to DataFrame
        Other tables (e.g. ``tsfa_offline``).
    path : Path or None
        The results folder, None for an in-memory run.
    """

    config: dict[str, Any]
    metrics: Any
    clients: Any
    summary: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    _state: dict[str, Any] | None = None

    def __repr__(self) -> str:
        name = self.config.get("name", "")
        rounds = len(self.metrics) if self.metrics is not None else 0
        q = self.summary.get("quality_metric")
        final = self.summary.get(f"final_{q}") if q else None
        parts = [repr(name), f"{rounds} rounds"]
        if final is not None:
            parts.append(f"final {q} {final:.4g}")
        parts.append(f"path={str(self.path)!r}" if self.path is not None else "in memory")
        if not self.finished:
            parts.append("unfinished")
        return f"Run({', '.join(parts)})"

    @property
    def finished(self) -> bool:
        """True when the run completed (its summary exists)."""
        return bool(self.summary)

    @property
    def adapter(self) -> dict[str, Any]:
        """The final global adapter: parameter name -> tensor (LoRA factors and head)."""
        if self._state is not None:
            return self._state
        if self.path is None or not (self.path / "adapter").is_dir():
            raise WirelessFLError("output.save_adapter", "this run has no saved adapter")
        from safetensors.torch import load_file

        return load_file(str(self.path / "adapter" / "adapter_model.safetensors"))

    def model(self) -> Any:
        """The final global model as a peft model (base rebuilt, adapter loaded)."""
        from wirelessfl.learning.models import load_global_model

        if self.path is None or not (self.path / "adapter").is_dir():
            raise WirelessFLError("output.save_adapter",
                                  "the peft model needs a run folder with an adapter "
                                  "(run with output=<folder>)")
        return load_global_model(self.path)

    def tokenizer(self) -> Any:
        """The run's tokenizer (a causal LM's pads with its end token when it has no pad
        token), as training used it."""
        from wirelessfl.build import model_tokenizer, resolve_model
        from wirelessfl.scenario import parse_scenario

        return model_tokenizer(resolve_model(parse_scenario(self.config)))

    def plot(self, y: str = "accuracy", x: str = "sim_time_s", ax: Any = None) -> Any:
        """``y`` against ``x`` from :attr:`metrics` (NaN rows skipped); a matplotlib Figure.

        Uses matplotlib's object API, so the process's backend is never changed; in
        a notebook the returned Figure displays itself.
        """
        from wirelessfl.plotting import axis_label, subplots

        for key in (x, y):
            if key not in self.metrics.columns:
                raise WirelessFLError("plot", f"no metric {key!r}; metrics: "
                                      f"{', '.join(self.metrics.columns)}")
        if ax is None:
            fig, ax = subplots(figsize=(5.0, 3.4))
        else:
            fig = ax.figure
        d = self.metrics[[x, y]].dropna()
        ax.plot(d[x], d[y], marker="o", ms=3, label=self.config.get("name", ""))
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(axis_label(y))
        ax.grid(alpha=0.3)
        return fig


def _frame(rows: list[dict[str, Any]]) -> Any:
    """Rows as a DataFrame with exactly the dtypes and values :func:`load` reads back
    from the CSV file (the rows go through the results writer's cell format)."""
    import csv
    import io

    import pandas as pd

    from wirelessfl.results import _cell

    if not rows:
        return pd.DataFrame()
    header = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header)
    w.writeheader()
    for row in rows:
        w.writerow({k: _cell(row.get(k, float("nan"))) for k in header})
    buf.seek(0)
    return pd.read_csv(buf)


def _assign(raw: dict[str, Any], key: str, value: Any) -> None:
    """``raw[a][b] = value`` for ``key = "a.b"`` (sections created as needed)."""
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ScenarioError(key, f"{part!r} is not a section")
        node = nxt
    node[parts[-1]] = value


def resolve_scenario(scenario: Any, overrides: Mapping[str, Any] | None = None) -> Any:
    """A validated :class:`~wirelessfl.scenario.Scenario` from a path, a dict or a Scenario,
    with ``overrides`` (dotted keys, or ``__`` for the dot) applied first."""
    import copy

    from wirelessfl.scenario import Scenario, load_raw, parse_scenario

    if isinstance(scenario, Scenario):
        raw = scenario.model_dump(mode="json")
    elif isinstance(scenario, Mapping):
        raw = copy.deepcopy(dict(scenario))
    elif isinstance(scenario, (str, Path)):
        raw = load_raw(scenario)
    else:
        raise ScenarioError("scenario", f"expected a path, a dict or a Scenario, got "
                            f"{type(scenario).__name__}")
    for key, value in (overrides or {}).items():
        _assign(raw, key.replace("__", "."), value)
    return parse_scenario(raw)


def run(scenario: Any, *, output: str | Path | None = DEFAULT, overwrite: bool = False,
        progress: bool = False, observers: Sequence[Any] = (),
        set: Mapping[str, Any] | None = None, **overrides: Any) -> Run:  # noqa: A002
    """Run a scenario and return its results.

    Parameters
    ----------
    scenario : str, Path, dict or Scenario
        A scenario YAML file, its content as a dict, or a validated Scenario.
    output : str, Path or None
        The results folder; by default the scenario's ``output.dir``; None keeps
        everything in memory (no files: no plots, the adapter as tensors).
    overwrite : bool
        Replace an earlier run in ``output``.
    progress : bool
        Show a progress bar.
    observers : sequence of Observer
        Extra observers (:mod:`wirelessfl.observers`).
    set : mapping, optional
        Overrides by dotted key, ``{"clients.count": 20}``.
    **overrides
        Overrides as keywords, ``__`` for the dot: ``rounds=2, clients__count=20``.
    """
    from wirelessfl.observers import MemoryObserver
    from wirelessfl.session import run_in_memory, run_scenario

    sc = resolve_scenario(scenario, {**(set or {}), **overrides})
    if output is not None:
        path = sc.output_dir if output == DEFAULT else Path(output)
        folder, _ = run_scenario(sc, overwrite=overwrite, progress=progress, out_dir=path,
                                 observers=observers)
        return load(folder)
    memory = MemoryObserver()
    run_in_memory(sc, [memory, *observers], progress)
    return Run(memory.config, _frame(memory.metrics), _frame(memory.clients), memory.summary,
               memory.events, {k: _frame(v) for k, v in memory.tables.items()}, None,
               memory.state)


def load(path: str | Path) -> Run:
    """A run folder read back; an unfinished (killed) run loads with a warning and
    ``finished = False``."""
    import pandas as pd
    import yaml

    folder = Path(path)
    if not (folder / "config.yaml").is_file():
        raise WirelessFLError("path", f"{str(folder)!r} is not a run folder (no config.yaml)")
    config = yaml.safe_load((folder / "config.yaml").read_text()) or {}

    def table(name: str) -> Any:
        f = folder / f"{name}.csv"
        return pd.read_csv(f) if f.is_file() and f.stat().st_size else pd.DataFrame()

    summary = finished_summary(folder)
    if summary is None:
        summary = {}
        warnings.warn(f"{folder} holds an unfinished run (no summary.json)", stacklevel=2)
    events = []
    if (folder / "events.jsonl").is_file():
        events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()
                  if x.strip()]
    known = {"metrics", "clients"}
    tables = {f.stem: table(f.stem) for f in sorted(folder.glob("*.csv")) if f.stem not in known}
    return Run(config, table("metrics"), table("clients"), summary, events, tables, folder)


def _number(text: str) -> Any:
    """``text`` as an int or float when it reads as one, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_sweep(path: str | Path, finished_only: bool = True) -> Any:
    """A sweep folder as one tidy DataFrame: every run's ``metrics.csv`` rows, with the
    run's name, its grid values (from ``sweep.csv``), seed and status.

    ``finished_only``: leave out runs without a summary (killed or failed).
    """
    import pandas as pd

    folder = Path(path)
    index = folder / "sweep.csv"
    if not index.is_file():
        raise WirelessFLError("path", f"{str(folder)!r} is not a sweep folder (no sweep.csv)")
    sweep = pd.read_csv(index, dtype=str, keep_default_na=False)
    frames = []
    for rec in sweep.to_dict("records"):
        run_dir = folder / rec["run"]
        done = finished_summary(run_dir) is not None
        if (finished_only and not done) or not (run_dir / "metrics.csv").is_file():
            continue
        m = pd.read_csv(run_dir / "metrics.csv")
        grid = {k: v for k, v in rec.items() if k not in ("run", "status", "error", "wall_s")}
        m.insert(0, "run", rec["run"])
        for i, (k, v) in enumerate(grid.items(), start=1):
            m.insert(i, k, _number(v))
        m["finished"] = done
        frames.append(m)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def sweep(scenario: str | Path, grid: Mapping[str, Sequence[Any]], *, jobs: int = 1,
          out: str | Path | None = None, progress: bool = False,
          set: Mapping[str, Any] | None = None) -> Any:  # noqa: A002
    """Run the cartesian product of ``grid`` (key -> values) and return
    :func:`load_sweep` of its folder. Finished runs are skipped, as on the CLI."""
    from wirelessfl.sweeper import run_sweep

    items = [f"{k}={','.join(map(str, v))}" for k, v in grid.items()]
    sets = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
            for k, v in (set or {}).items()]
    folder, _ = run_sweep(str(scenario), items, sets, jobs,
                          Path(out) if out is not None else None, progress=progress)
    return load_sweep(folder)


def example_scenarios() -> list[Any]:
    """The example scenario files shipped with the package (sorted)."""
    root = files("wirelessfl") / "scenarios"
    return sorted((f for f in root.iterdir() if f.name.endswith(".yaml")),
                  key=lambda f: f.name)
