"""Crash-safe runs: a checkpoint after every round, and resuming from it.

After each round the session writes ``checkpoint.pt`` in the results folder (a
temporary file renamed over the old one, so a kill at any instant leaves either the
previous checkpoint or the new one). It holds everything the next round depends on:

* the loop's own state: round, simulated clock, counters, accuracy so far, the
  virtual queue, the client-sampling generator;
* the global adapter, and the base weights that merging aggregators change in place;
* the mutable components, pickled together so that their shared references survive:
  the cell (positions, mobility, fading channel and its generator, CSI generator),
  the aggregator (FedTree's clusters, FLoRA's bookkeeping, ...), the controller
  (TSFA's participation queues, ...), the compressor and the selector. References
  to the live model, its modules and parameters, the data set and Python modules are
  stored by name and reconnected to the rebuilt simulation on load;
* torch's global generator state;
* the results tables' shape at that round (header and row counts), so that rows a
  killed round had already appended are cut off on resume.

``wirelessfl run SCENARIO --resume`` rebuilds the components from the stored
(resolved) scenario, restores the checkpoint and continues: the results tables are
byte-identical to an uninterrupted run's.
"""

from __future__ import annotations

import importlib
import io
import pickle
import types
from pathlib import Path
from typing import Any

import torch

from wirelessfl.errors import OutputError
from wirelessfl.records import LoopState

CHECKPOINT = "checkpoint.pt"
VERSION = 2  # 2: components as built by wirelessfl.build, the loop state as LoopState


class _Pickler(pickle.Pickler):
    """Pickles components; live model parts, the data and modules by reference."""

    def __init__(self, file: io.BytesIO, live: dict[int, tuple[str, str]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.live = live

    def persistent_id(self, obj: Any) -> Any:
        ref = self.live.get(id(obj))
        if ref is not None:
            return ref
        if isinstance(obj, types.ModuleType):
            return ("module", obj.__name__)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, live: dict[tuple[str, str], Any]) -> None:
        super().__init__(file)
        self.live = live

    def persistent_load(self, pid: Any) -> Any:
        kind, name = pid
        if kind == "module":
            return importlib.import_module(name)
        return self.live[(kind, name)]


def _live_objects(c: Any) -> dict[tuple[str, str], Any]:
    """The objects a checkpoint refers to by name: model modules and parameters, data."""
    bench = c.bench
    live: dict[tuple[str, str], Any] = {("bench", "model"): bench.model,
                                        ("bench", "data"): bench.data,
                                        ("bench", "trainer"): bench.trainer}
    for name, m in bench.model.named_modules():
        live[("nn", name)] = m
    for name, p in bench.model.named_parameters():
        live[("param", name)] = p
    return live


COMPONENTS = ("cell", "aggregator", "controller", "compressor", "selector")


def save(path: Path, c: Any, loop: LoopState, tables: dict[str, Any],
         input_scenario: dict[str, Any]) -> None:
    """Write the checkpoint of a run after a round (atomic: temp file + rename).

    Parameters
    ----------
    path : Path
        The results folder.
    c : Components
        The run's components (:class:`wirelessfl.build.Components`).
    loop : LoopState
        The round loop's state after the round.
    tables : dict
        :meth:`wirelessfl.results.ResultsWriter.snapshot`.
    input_scenario : dict
        The scenario as the user gave it (before the controller's offline stage), to
        check that a resume is given the same one.
    """
    live = {id(v): k for k, v in _live_objects(c).items()}
    buf = io.BytesIO()
    _Pickler(buf, live).dump({name: getattr(c, name) for name in COMPONENTS})
    payload = {
        "version": VERSION,
        "scenario": c.scenario.model_dump(mode="json"),
        "input": input_scenario,
        "loop": loop.to_dict(),
        "components": buf.getvalue(),
        "bases": ({s.prefix: s.base.detach().clone() for s in c.bench.sites}
                  if c.aggregator.merges_into_base else {}),
        "torch_rng": torch.get_rng_state(),
        "tables": tables,
    }
    from wirelessfl.results import replacing

    with replacing(path / CHECKPOINT, "wb") as fh:
        torch.save(payload, fh)


def read(path: Path) -> dict[str, Any]:
    """The checkpoint in the results folder ``path`` (raw; see :func:`restore`).

    Raises
    ------
    OutputError
        A checkpoint written by another version of the checkpoint format.
    """
    data = torch.load(path / CHECKPOINT, weights_only=False)
    if data.get("version") != VERSION:
        raise OutputError("--resume", f"{str(path)!r} holds a checkpoint of format "
                          f"{data.get('version')} (this version reads {VERSION}); rerun with "
                          "--overwrite")
    return data


def restore(c: Any, ckpt: dict[str, Any]) -> LoopState:
    """Put the checkpoint's components into ``c``; return the loop's state."""
    comps = _Unpickler(io.BytesIO(ckpt["components"]), _live_objects(c)).load()
    for name, obj in comps.items():
        setattr(c, name, obj)
    with torch.no_grad():
        for s in c.bench.sites:
            if s.prefix in ckpt["bases"]:
                s.base.copy_(ckpt["bases"][s.prefix])
    torch.set_rng_state(ckpt["torch_rng"])
    return LoopState(**ckpt["loop"])
