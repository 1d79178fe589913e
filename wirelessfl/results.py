"""The results folder: resolved config, per-round tables, events, summary, adapter.

Layout (docs/architecture.md)::

    config.yaml     the resolved scenario
    metrics.csv     one row per round, appended and flushed as each round ends
    clients.csv     one row per selected client per round
    events.jsonl    drops, outages, solver fallbacks, per-phase timelines
    summary.json    final numbers, seed, package versions, host wall time
    adapter/        the final global adapter (peft ``save_pretrained``)
    plots/          figures
    <name>.csv      tables a method adds before round 0 (its Preparation's), listed in
                    the hidden manifest ``.tables``

Rows are appended as rounds finish, so a crash loses no finished round. A folder
that already holds a run is never overwritten unless asked (``--overwrite``), and
then only the files listed above are replaced. A run is finished when
:func:`finished_summary` finds its summary.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import shutil
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from wirelessfl.errors import OutputError

RESULT_FILES = ("config.yaml", "metrics.csv", "clients.csv", "events.jsonl", "summary.json",
                "timings.jsonl", "checkpoint.pt")
RESULT_DIRS = ("adapter", "plots", "tensorboard")
STANDARD_TABLES = ("metrics", "clients")
MANIFEST = ".tables"  # the other tables a run wrote, one name per line
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


@contextlib.contextmanager
def replacing(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write ``path`` all at once: a file opened on ``<path>.tmp``, flushed to disk and
    renamed over ``path`` when the block ends, removed if it raises. A crash at any
    moment leaves the old file or the new one, never half of one.

    One writer per folder (:class:`RunLock`) makes the fixed temporary name safe.
    """
    tmp = path.with_name(path.name + ".tmp")
    newline = "" if "b" not in mode else None
    try:
        with tmp.open(mode, newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _replace_table(file: Path, header: list[str], rows: list[list[str]]) -> None:
    """Rewrite a CSV table with ``header``, each row padded or cut to its width."""
    width = len(header)
    with replacing(file) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows((r + [""] * (width - len(r)))[:width] for r in rows)


def extra_tables(path: Path) -> list[str]:
    """The file names of the tables besides metrics and clients that the run in
    ``path`` wrote (from its manifest)."""
    try:
        names = (path / MANIFEST).read_text().split()
    except OSError:
        return []
    return [f"{n}.csv" for n in dict.fromkeys(names)]


def result_files(path: Path) -> list[str]:
    """Every file name a run in ``path`` may have written (standard and extra)."""
    return [*RESULT_FILES, *extra_tables(path), MANIFEST]


def finished_summary(path: Path) -> dict[str, Any] | None:
    """The summary of the finished run in ``path``, or None if it holds none.

    Finished: ``summary.json`` (written last, atomically) is a mapping, and
    ``metrics.csv`` holds the row of every round it counts.
    """
    try:
        summary = json.loads((path / "summary.json").read_text())
        with (path / "metrics.csv").open(newline="") as fh:
            rows = sum(1 for _ in csv.reader(fh)) - 1
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or rows != summary.get("rounds"):
        return None
    return summary


def holds_run(path: Path) -> bool:
    """Whether ``path`` holds a run of ours: a ``config.yaml`` that is a scenario mapping."""
    import yaml

    cfg = path / "config.yaml"
    try:
        data = yaml.safe_load(cfg.read_text()) if cfg.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "name" in data and "method" in data


def check_output_dir(path: Path, overwrite: bool) -> None:
    """Refuse a folder that holds a run unless ``overwrite`` (nothing is touched).

    ``overwrite`` replaces only a folder that holds a previous run of ours
    (:func:`holds_run`): a folder with, say, a ``plots/`` of someone else's is never
    emptied.
    """
    if path.exists() and not path.is_dir():
        raise OutputError("output.dir", f"{str(path)!r} exists and is not a folder")
    held = [n for n in (*result_files(path), *RESULT_DIRS) if (path / n).exists()]
    if held and not overwrite:
        if finished_summary(path) is None:  # a run that did not finish
            if (path / "checkpoint.pt").is_file():
                raise OutputError("output.dir", f"{str(path)!r} holds an unfinished run; "
                                  "pass --resume to continue it, or --overwrite to start "
                                  "again")
            if holds_run(path):
                raise OutputError("output.dir", f"{str(path)!r} holds a run that stopped "
                                  "before its first checkpoint (nothing to resume); pass "
                                  "--overwrite to start again, or choose another output.dir")
        raise OutputError("output.dir", f"{str(path)!r} already holds a run ({held[0]}); "
                          "choose another output.dir or pass --overwrite")
    if held and not holds_run(path):
        raise OutputError("output.dir", f"{str(path)!r} holds {held[0]} but no run of "
                          "wirelessfl (no valid config.yaml); --overwrite deletes only "
                          "earlier runs: choose another folder")


class ResultsWriter:
    """Writes one run's results folder.

    Parameters
    ----------
    path : Path
        The folder (created if missing).
    overwrite : bool
        Replace an earlier run's files in ``path``.
    resume : bool
        Keep the folder's files (a resumed run; see :meth:`restore`).
    lock : RunLock, optional
        The folder's lock, when the caller holds it already.
    """

    def __init__(self, path: Path, overwrite: bool = False, resume: bool = False,
                 lock: RunLock | None = None) -> None:
        if not resume:
            check_output_dir(path, overwrite)
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.lock = lock if lock is not None else RunLock(path)  # before any deletion
        if not resume:
            for name in result_files(path):
                (path / name).unlink(missing_ok=True)
            for name in RESULT_DIRS:
                if (path / name).is_dir():
                    shutil.rmtree(path / name)
        self._headers: dict[str, list[str]] = {}
        self._rows: dict[str, int] = {}
        self._events = 0

    def snapshot(self) -> dict[str, Any]:
        """The tables' shape now: headers, data rows per table, event lines."""
        return {"headers": {k: list(v) for k, v in self._headers.items()},
                "rows": dict(self._rows), "events": self._events}

    def restore(self, snap: dict[str, Any]) -> None:
        """Cut the tables back to ``snap`` (rows a killed round appended are dropped).

        Each table is rewritten (atomically) with the snapshot's header and its first
        rows, each row cut to the header's width (a column added after the snapshot
        is removed again); ``events.jsonl`` keeps its first lines.
        """
        for table, header in snap["headers"].items():
            file = self.path / f"{table}.csv"
            n = snap["rows"].get(table, 0)
            with file.open(newline="") as fh:
                rows = list(csv.reader(fh))[1 : n + 1]
            if len(rows) < n:
                raise OutputError("--resume", f"{file} has {len(rows)} rows; the checkpoint "
                                  f"expects {n}: the folder was changed after the run")
            _replace_table(file, header, rows)
        events = self.path / "events.jsonl"
        lines = events.read_text().splitlines(keepends=True) if events.is_file() else []
        with replacing(events) as fh:
            fh.write("".join(lines[: snap["events"]]))
        self._headers = {k: list(v) for k, v in snap["headers"].items()}
        self._rows = dict(snap["rows"])
        self._events = snap["events"]

    def write_config(self, yaml_text: str) -> None:
        with replacing(self.path / "config.yaml") as fh:
            fh.write(yaml_text)

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
            if table not in STANDARD_TABLES:  # so that --overwrite knows it is ours
                with (self.path / MANIFEST).open("a") as fh:
                    fh.write(table + "\n")
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
        self._rows[table] = self._rows.get(table, 0) + len(rows)

    @staticmethod
    def _rewrite(file: Path, header: list[str]) -> None:
        """Rewrite ``file`` under a wider ``header`` (new columns come last, so the
        rows already written gain empty cells at their end; atomic)."""
        with file.open(newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        _replace_table(file, header, rows)

    def event(self, record: dict[str, Any]) -> None:
        """Append a record to ``events.jsonl`` (deterministic: no host timings)."""
        with (self.path / "events.jsonl").open("a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        self._events += 1

    def timing(self, record: dict[str, Any]) -> None:
        """Append host wall-clock timings to ``timings.jsonl`` (differs run to run)."""
        with (self.path / "timings.jsonl").open("a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")

    def write_summary(self, summary: dict[str, Any]) -> None:
        """``summary.json``, strict JSON: NaN and infinities are written as ``null``."""
        text = json.dumps(_finite(summary), indent=2, sort_keys=True, allow_nan=False)
        with replacing(self.path / "summary.json") as fh:  # its presence marks a finished run
            fh.write(text)


class RunLock:
    """An exclusive lock on a results folder, held by the process writing it.

    ``fcntl.flock`` on ``<folder>/.lock``: the kernel releases it when the process
    dies, however it dies, so a stale lock never blocks a resume; a second writer
    gets one line naming the holder's PID instead of interleaving its rows.
    """

    def __init__(self, path: Path) -> None:
        import fcntl

        self.path = path / ".lock"
        for _ in range(100):
            self.file = self.path.open("a+")
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.file.seek(0)
                holder = self.file.read().strip() or "another process"
                self.file.close()
                raise OutputError("output.dir", f"{str(path)!r} is being written by process "
                                  f"{holder}; wait for it or stop it") from None
            # the holder before us removes the file when it ends: make sure we locked
            # the file the path names now, not the one it unlinked
            try:
                same = os.stat(self.path).st_ino == os.fstat(self.file.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            self.file.close()
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()

    def release(self) -> None:
        import fcntl

        if not self.file.closed:
            # unlink while still holding the lock, so that no one can lock this file
            # and believe it owns the folder (the next writer checks the inode)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))
