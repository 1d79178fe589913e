"""The learning facts of a scenario, cached so that ``wirelessfl validate`` needs no torch.

What ``validate`` prints has two sides. The radio side (radio, channel, placement,
mobility, selection, controller, simulation, output) is numpy work and is computed
again every time. The learning side (the model, its adapter, the data and its shards,
the methods, the clients' devices and ranks) needs torch, transformers and the model
itself, which take seconds to import and load; what it contributes is a handful of
numbers, the :class:`LearningFacts`. The first full build of a scenario stores them
under a key of everything they can depend on (:func:`facts_key`); a later ``validate``
of any scenario with the same key reads them and imports no torch.

The key is a SHA-256 of

- the scenario without the sections the radio side computes again (:data:`RADIO_SIDE`;
  ``radio.bits_per_value``, which sets the payloads, stays in);
- the installed distributions (every ``*.dist-info`` and ``*.egg-info`` name on
  ``sys.path``, which carries its version) and the Python version;
- the size and modification time of every source file of ``wirelessfl`` and
  ``channels``;
- the size and modification time of every file that a string in ``model.options``
  or ``data.options`` names (all the files of a folder), and of the module file of a
  ``module:Class`` plug-in name.

``WIRELESSFL_CACHE=off`` turns the cache off (every ``validate`` builds in full). The
folder keeps at most :data:`MAX_ENTRIES` entries, the most recently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from wirelessfl.cache import cache_dir
from wirelessfl.scenario import Scenario

#: Scenario keys that the radio side computes again on every ``validate``: they are not
#: part of the key. A top-level name drops the section, ``section.key`` one key of it.
RADIO_SIDE = ("name", "rounds", "channel", "controller", "sim", "output",
              "clients.placement", "clients.mobility", "clients.selection",
              "clients.selection_options", "clients.fraction")
#: The one radio key the learning side reads (the payload of a value, bits).
RADIO_KEPT = "bits_per_value"
FORMAT = 1
#: At most this many files of a folder named in the options enter the key.
MAX_FILES = 10_000
#: Stored entries kept at most; beyond, the least recently used are removed (to 3/4).
MAX_ENTRIES = 2_000


@dataclass(frozen=True)
class LearningFacts:
    """What the learning side contributes to a run's plan.

    Attributes
    ----------
    rows : dict of int to list of float
        Payload of a rank-r client sending m ranks, ``rows[r][m]``, bits, for every
        distinct client rank r and m = 0..R.
    round_flops : float
        Training FLOPs of one client's local round.
    broadcast_bits : float
        Downlink payload of the initial adapter, bits.
    sparsifies : bool
        Whether the compressor can send fewer ranks than a client holds.
    train_examples, test_examples : int
        Examples in the clients' shards and in the test set.
    trainable_values : int
        Trainable adapter values.
    info : dict
        What the controller's offline check adds to ``validate``'s lines.
    """

    rows: dict[int, list[float]]
    round_flops: float
    broadcast_bits: float
    sparsifies: bool
    train_examples: int
    test_examples: int
    trainable_values: int
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The facts as one JSON document (with the format number)."""
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LearningFacts:
        """The facts of :meth:`to_json`.

        Raises
        ------
        ValueError
            Not a document of this format.
        """
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.pop("format", None) != FORMAT:
            raise ValueError("not a learning-facts document of this format")
        try:
            rows = {int(r): [float(b) for b in row] for r, row in raw.pop("rows").items()}
            return cls(rows=rows, round_flops=float(raw["round_flops"]),
                       broadcast_bits=float(raw["broadcast_bits"]),
                       sparsifies=bool(raw["sparsifies"]),
                       train_examples=int(raw["train_examples"]),
                       test_examples=int(raw["test_examples"]),
                       trainable_values=int(raw["trainable_values"]), info=dict(raw["info"]))
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"a learning-facts document without {err}") from None


def learning_side(sc: Scenario) -> dict[str, Any]:
    """The scenario as plain data, without :data:`RADIO_SIDE` (and of ``radio`` only
    ``bits_per_value``)."""
    raw = sc.model_dump(mode="json")
    raw["radio"] = {RADIO_KEPT: raw["radio"][RADIO_KEPT]}
    for key in RADIO_SIDE:
        section, _, name = key.partition(".")
        if name:
            raw[section].pop(name, None)
        else:
            raw.pop(section, None)
    return raw


def _strings(value: Any) -> list[str]:
    """Every string in a nested structure of dicts and lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _tree(root: Path, suffix: str = "", skip: tuple[str, ...] = ()) -> list[Any]:
    """(relative name, size, mtime) of the files under ``root`` ending in ``suffix``,
    in sorted order, leaving out the folders named in ``skip``; at most
    :data:`MAX_FILES` of them."""
    out: list[Any] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for n in sorted(names):
            if n.endswith(suffix):
                st = (Path(folder) / n).stat()
                out.append([os.path.relpath(Path(folder) / n, root), st.st_size,
                            st.st_mtime_ns])
                if len(out) >= MAX_FILES:
                    return out
    return out


def _stamp(path: Path) -> list[Any]:
    """(name, size, mtime) of ``path``, or its name and every file under it when a
    folder."""
    if path.is_dir():
        return [str(path), _tree(path)]
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def _file_stamps(sc: Scenario) -> list[Any]:
    """The stamps of the files the model and data options name."""
    out = []
    for text in _strings([sc.model.options, sc.data.options]):
        if not text or len(text) > 4096 or "\0" in text:
            continue
        try:
            path = Path(text).expanduser().resolve()
            if path.exists():
                out.append(_stamp(path))
        except (OSError, RuntimeError, ValueError):  # a string that is no path
            continue
    return out


def _module_stamps(sc: Scenario) -> list[Any]:
    """The module files of ``module:Class`` plug-in names (found without importing the
    module: its top-level package's folder, then the dotted path)."""
    names = [sc.model.name, sc.data.name, sc.method.aggregator, sc.method.compressor,
             sc.method.controller]
    out = []
    for name in names:
        if ":" not in name:
            continue
        parts = name.split(":", 1)[0].split(".")
        try:
            spec = find_spec(parts[0])
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin is None:
            out.append([name, None])
            continue
        base = Path(spec.origin).parent if len(parts) > 1 else Path(spec.origin)
        path = base.joinpath(*parts[1:]) if len(parts) > 1 else base
        for candidate in (path.with_suffix(".py"), path / "__init__.py", path):
            if candidate.is_file():
                out.append(_stamp(candidate))
                break
        else:
            out.append([name, None])
    return out


def _installed() -> list[str]:
    """The names of the installed distributions' metadata folders (with versions) in
    the ``site-packages`` folders on ``sys.path`` (not the working folder, whose
    ``*.egg-info`` of a checkout would make the key depend on where one stands)."""
    out = set()
    for entry in sys.path:
        if Path(entry).name not in ("site-packages", "dist-packages"):
            continue
        try:
            with os.scandir(entry) as it:
                out.update(e.name for e in it
                           if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
    return sorted(out)


def _sources() -> list[Any]:
    """(file, size, mtime) of every source file of ``wirelessfl`` and ``channels``."""
    roots = [Path(__file__).parent]
    spec = find_spec("channels")
    if spec is not None and spec.origin is not None:
        roots.append(Path(spec.origin).parent)
    return [_tree(root, ".py", ("__pycache__",)) for root in roots]


def facts_key(sc: Scenario) -> str:
    """The cache key of ``sc``'s learning facts (hex SHA-256; see the module's text)."""
    doc = {"scenario": learning_side(sc), "python": sys.version, "installed": _installed(),
           "sources": _sources(), "files": _file_stamps(sc), "modules": _module_stamps(sc),
           "format": FORMAT}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _path(key: str) -> Path | None:
    root = cache_dir()
    return None if root is None else root / "facts" / f"{key}.json"


def load_facts(key: str) -> LearningFacts | None:
    """The facts stored under ``key``, or None (none, the cache off, or a file that does
    not read back: it is then built again and rewritten)."""
    path = _path(key)
    if path is None:
        return None
    try:
        facts = LearningFacts.from_json(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    try:
        os.utime(path)  # recently used: kept when the folder is pruned
    except OSError:
        pass
    return facts


def save_facts(key: str, facts: LearningFacts) -> None:
    """Store ``facts`` under ``key``, atomically (a temporary file renamed into place);
    a cache that cannot be written (a read-only home) is left alone."""
    path = _path(key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".facts-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(facts.to_json())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        prune(path.parent)
    except OSError:
        return


def prune(folder: Path, keep: int = MAX_ENTRIES) -> None:
    """Remove the least recently used entries of ``folder`` when it holds more than
    ``keep`` (every source edit makes new keys: old entries are never read again),
    down to three quarters of ``keep``."""
    entries = list(folder.glob("*.json"))
    if len(entries) <= keep:
        return
    stamped = []
    for e in entries:
        try:
            stamped.append((e.stat().st_mtime_ns, e))
        except OSError:  # removed meanwhile by another process
            continue
    stamped.sort()
    for _, e in stamped[: len(stamped) - (3 * keep) // 4]:
        e.unlink(missing_ok=True)
