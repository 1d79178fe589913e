"""The results folder: resolved config, per-round tables, events, summary, adapter.

Layout (docs/architecture.md)::

    config.yaml     the resolved scenario
    metrics.csv     one row per round, appended and flushed as each round ends
    clients.csv     one row per selected client per round
    events.jsonl    drops, outages, solver fallbacks, per-phase timelines
    summary.json    final numbers, seed, package versions, host wall time
    adapter/        the final global adapter (peft ``save_pretrained``)
    plots/          figures

Rows are appended as rounds finish, so a crash loses no finished round. A folder
that already holds a run is never overwritten unless asked (``--overwrite``), and
then only the files listed above are replaced.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from wirelessfl.errors import OutputError

RESULT_FILES = ("config.yaml", "metrics.csv", "clients.csv", "events.jsonl", "summary.json",
                "tsfa_offline.csv")
RESULT_DIRS = ("adapter", "plots")
PACKAGES = ("wirelessfl", "torch", "peft", "transformers", "numpy", "scipy", "cvxpy", "simpy",
            "pydantic")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _cell(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return "" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, float):
        return repr(v)
    return v


def _finite(v: Any) -> Any:
    """``v`` with every non-finite float replaced by None (recursively)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuse a folder that holds a run unless ``overwrite`` (nothing is touched)."""
    if path.exists() and not path.is_dir():
        raise OutputError("output.dir", f"{str(path)!r} exists and is not a folder")
    held = [n for n in (*RESULT_FILES, *RESULT_DIRS) if (path / n).exists()]
    if held and not overwrite:
        raise OutputError("output.dir", f"{str(path)!r} already holds a run ({held[0]}); "
                          "choose another output.dir or pass --overwrite")


class ResultsWriter:
    """Writes one run's results folder.

    Parameters
    ----------
    path : Path
        The folder (created if missing).
    overwrite : bool
        Replace an earlier run's files in ``path``.
    """

    def __init__(self, path: Path, overwrite: bool = False) -> None:
        check_output_dir(path, overwrite)
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        for name in RESULT_FILES:
            (path / name).unlink(missing_ok=True)
        for name in RESULT_DIRS:
            if (path / name).is_dir():
                shutil.rmtree(path / name)
        self._headers: dict[str, list[str]] = {}

    def write_config(self, yaml_text: str) -> None:
        (self.path / "config.yaml").write_text(yaml_text)

    def append_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Append rows to ``<table>.csv``; columns are the union of every row's keys.

        A column that first appears in a later row is added to the header, and the
        rows already written get an empty cell for it: the file is rewritten to a
        temporary file and renamed over the old one, so a crash leaves either the
        old table or the new one, never half of each.
        """
        if not rows:
            return
        file = self.path / f"{table}.csv"
        header = self._headers.get(table)
        new = header is None
        keys = list(dict.fromkeys(k for row in rows for k in row))
        if new:
            header = self._headers[table] = keys
        elif any(k not in header for k in keys):
            header = self._headers[table] = header + [k for k in keys if k not in header]
            self._rewrite(file, header)
        with file.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=header, extrasaction="raise")
            if new:
                w.writeheader()
            for row in rows:
                w.writerow({k: _cell(row.get(k, float("nan"))) for k in header})
            fh.flush()

    @staticmethod
    def _rewrite(file: Path, header: list[str]) -> None:
        """Rewrite ``file`` under a wider ``header`` (atomic: temp file + rename)."""
        old = read_csv(file)
        tmp = file.with_suffix(file.suffix + ".tmp")
        with tmp.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=header)
            w.writeheader()
            for row in old:
                w.writerow({k: row.get(k, "") for k in header})
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, file)

    def event(self, record: dict[str, Any]) -> None:
        with (self.path / "events.jsonl").open("a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")

    def write_summary(self, summary: dict[str, Any]) -> None:
        """``summary.json``, strict JSON: NaN and infinities are written as ``null``."""
        text = json.dumps(_finite(summary), indent=2, sort_keys=True, allow_nan=False)
        (self.path / "summary.json").write_text(text)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))
