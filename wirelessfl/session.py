"""A run from start to finish: the scenario built, the loop played into a folder.

:func:`run_scenario` and :func:`resume_run` own the results folder (its lock, the
writer, the checkpoint after every round, the plots at the end); :func:`play` runs
built components with the observers, the training pool the scenario asks for and
the summary; the Python API's in-memory runs call it with no folder.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from wirelessfl import checkpoint as ckpt
from wirelessfl import preflight, records, seeding
from wirelessfl.build import (
    Components,
    WorkbenchFactory,
    build_components,
    build_run,
    plans_by_paths,
)
from wirelessfl.errors import OutputError
from wirelessfl.learning.adapter import set_state
from wirelessfl.learning.pool import LocalPool
from wirelessfl.observers import Observer, RunEnd, RunStart
from wirelessfl.records import LoopState
from wirelessfl.results import (
    ResultsWriter,
    RunLock,
    check_output_dir,
    finished_summary,
    package_versions,
)
from wirelessfl.runner import LoopSettings, RoundLoop
from wirelessfl.scenario import Scenario, first_difference
from wirelessfl.sizes import budget_warning

log = logging.getLogger("wirelessfl")


def default_observers(c: Components, writer: ResultsWriter | None, progress: bool,
                      save_adapter: bool = True) -> list[Observer]:
    """Results folder (when ``writer``), logging, the scenario's loggers (given the
    folder), a progress bar."""
    from wirelessfl.observers import LoggingObserver, ProgressObserver, ResultsObserver

    out: list[Observer] = []
    if writer is not None:
        out.append(ResultsObserver(writer, save_adapter))
    out.append(LoggingObserver())
    for logger in c.loggers:
        logger.open(writer.path if writer is not None else None, c.scenario)
        out.append(logger)
    if progress:
        out.append(ProgressObserver())
    return out


def open_pool(c: Components) -> Any:
    """The training pool of ``compute.backend``: this process, or Ray actors that each
    build the same workbench from the scenario."""
    sc = c.scenario
    if sc.compute.backend != "ray":
        return LocalPool(c.bench)
    from wirelessfl.backends.ray_pool import RayPool

    threads = sc.compute.torch_threads or torch.get_num_threads()
    return RayPool(c.bench, WorkbenchFactory(sc.model_dump(mode="json"), threads), threads,
                   sc.compute.ray_address, sc.compute.ray_actors)


def settings(sc: Scenario, n_selected: int, channel: Any) -> LoopSettings:
    """What the round loop needs of the scenario (and of its fading ``channel``)."""
    return LoopSettings(sc.rounds, sc.seed, n_selected, sc.radio.uplink_bandwidth_hz,
                        sc.controller.latency_budget_s, sc.sim.deadline_s,
                        sc.sim.max_upload_s, sc.eval.every, sc.radio.resource_block_hz,
                        plans_by_paths(sc.channel.csi.planning, channel))


def play(c: Components, observers: Sequence[Observer], checkpoint: Any = None,
         resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Play the run of ``c`` to its end, reporting to ``observers``; return the summary.

    ``checkpoint(loop)`` is called after every round (after the observers);
    ``resume`` is a checkpoint read back: the components are restored and the rounds
    go on after it.
    """
    sc = c.scenario
    if resume is not None:
        loop = ckpt.restore(c, resume)
    else:
        loop = LoopState({n: t.clone() for n, t in c.bench.initial_state.items()},
                         seeding.rng(sc.seed, "sampling"))
    start = RunStart(sc, dict(c.preparation.tables),
                     resumed_at=loop.round + 1 if resume is not None else None,
                     quality=c.bench.task.quality)
    warning = budget_warning(c.plan())
    if warning:
        start.events.append({"round": -1, "event": "warning", "message": warning})
    started: list[Observer] = []
    try:
        for o in observers:
            o.on_start(start)
            started.append(o)
        pool = open_pool(c)
        try:
            loop = RoundLoop(settings(sc, c.n_selected, c.cell.channel), c.cell, c.selector,
                             c.aggregator, c.compressor, c.controller, pool, c.bench, c.sizes
                             ).run(loop, observers, checkpoint)
        finally:
            pool.close()
        set_state(c.bench.model, loop.state)
        summary = {**records.summary(c.info(), loop, sc.rounds, loop.wall_time_s),
                   "torch_threads": torch.get_num_threads(), "versions": package_versions()}
        end = RunEnd(summary, loop.state, lambda path: c.bench.save_adapter(loop.state, path))
        for o in observers:
            o.on_end(end)
    except BaseException as err:  # every started tracker ends its run, then it goes on up
        report_error(started, err)
        raise
    return summary


def report_error(observers: Sequence[Observer], err: BaseException) -> None:
    """``on_error`` of each observer; one that fails itself does not hide ``err``."""
    for o in observers:
        try:
            o.on_error(err)
        except Exception:  # noqa: BLE001  (the run's own error is the one to raise)
            log.exception("an observer failed while the run stopped on an error")


def run_scenario(sc: Scenario, overwrite: bool = False, progress: bool = True,
                 out_dir: Path | None = None, observers: Sequence[Observer] = (),
                 resume: bool = False) -> tuple[Path, dict[str, Any]]:
    """Build, check the output folder, run (checkpointing every round) and plot.

    With ``resume``, continue the unfinished run in the folder from its checkpoint
    (:func:`resume_run`). Returns (folder, summary).
    """
    path = out_dir if out_dir is not None else sc.output_dir
    if resume:
        return resume_run(sc, path, progress, observers)
    check_output_dir(path, overwrite)  # before the (slow) build: fail fast
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    lock = RunLock(path)  # one writer per folder, from before the build on
    try:
        c = build_run(sc)
        preflight.remember(sc, c)
    except BaseException:
        lock.release()
        if created:  # nothing of ours is left behind by a scenario that did not build
            shutil.rmtree(path, ignore_errors=True)
        raise
    try:
        writer = ResultsWriter(path, overwrite=True, lock=lock)
        summary = _into_folder(c, writer, progress, observers, sc.model_dump(mode="json"))
    finally:
        lock.release()  # also when the run fails: an in-process caller may resume it
    return path, summary


def _into_folder(c: Components, writer: ResultsWriter, progress: bool,
                 observers: Sequence[Observer], user: dict[str, Any],
                 resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Play ``c`` into ``writer``'s folder, checkpointing every round, then plot.

    ``user`` is the scenario as given (stored in each checkpoint to check a resume).
    """
    sc = c.scenario
    obs = [*default_observers(c, writer, progress, sc.output.save_adapter), *observers]
    summary = play(c, obs, lambda loop: ckpt.save(writer.path, c, loop, writer.snapshot(),
                                                  user), resume)
    try:
        _finish(sc, writer.path)
        for o in obs:
            o.on_folder(writer.path)
    except BaseException as err:
        report_error(obs, err)
        raise
    return summary


def _finish(sc: Scenario, path: Path) -> None:
    """What follows ``summary.json``: the plots, then the checkpoint is no longer needed."""
    if sc.output.plots:
        from wirelessfl.plotting import plot_run

        plot_run(path)
    (path / ckpt.CHECKPOINT).unlink(missing_ok=True)


def resume_run(sc: Scenario, path: Path, progress: bool = True,
               observers: Sequence[Observer] = ()) -> tuple[Path, dict[str, Any]]:
    """Continue the run in ``path`` from its checkpoint; finish a finished one's plots.

    ``sc`` must be the scenario the run was started with (a different one is refused,
    naming the first differing key). The components are rebuilt from the resolved
    scenario stored in the checkpoint (the controller's offline stage is not rerun),
    the tables are cut back to the checkpoint's round, and the rounds go on.
    """
    done = finished_summary(path)
    if done is not None:
        lock = RunLock(path)
        try:
            if sc.output.plots and not (path / "plots").is_dir():
                _finish(sc, path)
        finally:
            lock.release()
        return path, done
    if not (path / ckpt.CHECKPOINT).is_file():
        raise OutputError("--resume", f"{str(path)!r} holds no checkpoint to resume from; "
                          "run without --resume (with --overwrite if the folder holds files)")
    lock = RunLock(path)
    try:
        data = ckpt.read(path)
        diff = first_difference(data["input"], sc.model_dump(mode="json"))
        if diff:
            raise OutputError("--resume", f"the scenario differs from the one the run in "
                              f"{str(path)!r} was started with, at {diff}")
        c = build_components(Scenario.model_validate(data["scenario"]))
        writer = ResultsWriter(path, resume=True, lock=lock)
        writer.restore(data["tables"])
        summary = _into_folder(c, writer, progress, observers, data["input"], resume=data)
    finally:
        lock.release()
    return path, summary


def run_in_memory(sc: Scenario, observers: Sequence[Observer],
                  progress: bool = False) -> dict[str, Any]:
    """Run ``sc`` with no results folder (the Python API's ``output=None``)."""
    c = build_run(sc)
    preflight.remember(sc, c)
    return play(c, [*default_observers(c, None, progress), *observers])

