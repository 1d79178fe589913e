"""Ray: sweeps across a cluster, and one run's client training across a pool of actors.

Ray is an optional extra (``pip install -e '.[ray]'``), imported only here and only
when a sweep runs with ``--backend ray`` or a scenario sets ``compute.backend: ray``.
Without an address a local Ray is started on loopback with no dashboard and a bounded
object store (``WIRELESSFL_RAY_OBJECT_STORE_MB``, default 256); with one, the driver
joins that cluster. Only results travel: adapters (client training) and results folders
(sweeps), never whole models.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from wirelessfl.errors import MissingPackageError, WirelessFLError

_STARTED = False  # whether this process started the Ray it uses (and so shuts it down)


def require() -> Any:
    """The ``ray`` module, or a one-line error naming the extra."""
    try:
        import ray
    except ImportError:
        raise MissingPackageError("backend", "ray is not installed: pip install -e '.[ray]' "
                                  "(or pip install 'wirelessfl[ray]')") from None
    return ray


def reachable(address: str, timeout_s: float = 3.0) -> str | None:
    """Why ``host:port`` (or ``ray://host:port``) cannot be reached, or None if it can.

    Ray itself waits for minutes on an address nobody answers; a TCP connect does not.
    ``auto`` and other forms are left to Ray.
    """
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return None
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return None
    except OSError as err:
        return err.strerror or str(err) or type(err).__name__


def start(address: str | None = None, key: str = "--address") -> Any:
    """Connect to Ray: the running one, the cluster at ``address``, or a new local one."""
    global _STARTED
    ray = require()
    if address:
        why = reachable(address)
        if why is not None:
            raise WirelessFLError(key, f"cannot reach the Ray cluster at {address!r} ({why}); "
                                  "start it with `ray start --head` or check the address")
    if ray.is_initialized():  # a Ray this process already uses (a notebook, a test)
        return ray
    try:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            store = int(os.environ.get("WIRELESSFL_RAY_OBJECT_STORE_MB", "256")) << 20
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False,
                     object_store_memory=store, _node_ip_address="127.0.0.1",
                     log_to_driver=False, configure_logging=False)
            _STARTED = True
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WirelessFLError(key, f"cannot start or reach {where}: {msg}") from None
    return ray


def stop() -> None:
    """Shut Ray down if this process started it."""
    global _STARTED
    if _STARTED:
        import ray

        ray.shutdown()
        _STARTED = False


# ------------------------------------------------------------------ results folders


def pack(folder: Path) -> bytes:
    """A results folder as a gzip'd tar (the lock file left out)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.name != ".lock":
                tar.add(f, arcname=str(f.relative_to(folder)))
    return buf.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Write a :func:`pack`'d folder into ``folder`` (files replaced atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            if not m.isfile() or m.name.startswith(("/", "..")) or "/../" in m.name:
                continue  # only plain files inside the folder
            target = folder / m.name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(tar.extractfile(m).read())  # type: ignore[union-attr]
            os.replace(tmp, target)


def sweep_task(scenario_text: str, overrides: list[str], out_dir: str, host: str,
               threads: int, folder: bytes | None,
               cwd: str) -> tuple[dict[str, Any], bytes | None]:
    """One sweep run on a Ray worker; returns (result row, the folder packed or None).

    On the driver's own machine the run writes its folder in place (checkpoints
    survive a killed driver). Elsewhere it runs in a temporary folder seeded with
    ``folder`` (what the driver holds, for a resume) and sends the folder back.
    Relative paths in the scenario (trace or data files) are taken from the driver's
    working directory ``cwd`` when the worker has it; other nodes need the files at
    the same absolute paths.
    """
    from wirelessfl.sweeper import _run_one

    if Path(cwd).is_dir():
        os.chdir(cwd)
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "scenario.yaml"
        scenario.write_text(scenario_text)
        shared = os.environ.get("WIRELESSFL_RAY_SHIP_RESULTS", "") != "1"  # "1": tests
        if shared and socket.gethostname() == host and Path(out_dir).parent.is_dir():
            return _run_one(str(scenario), overrides, out_dir, threads), None
        run = Path(tmp) / "run"
        if folder:
            unpack(folder, run)
        result = _run_one(str(scenario), overrides, str(run), threads)
        return result, pack(run) if run.is_dir() else None


# ------------------------------------------------------------------ client training


class TrainerActor:
    """Holds the frozen base model once and trains the clients it is given.

    The actor builds the same simulation as the driver from the resolved scenario
    (same model, data, shards, masks and regulariser), so a client trained here is
    bit for bit the client the local backend trains, given the same thread count.
    """

    def __init__(self, scenario: dict[str, Any], threads: int) -> None:
        import torch

        from wirelessfl.runner import Simulation
        from wirelessfl.scenario import Scenario

        torch.set_num_threads(threads)
        sc = Scenario.model_validate(scenario)
        sc.compute.backend = "local"
        sc.compute.torch_threads = threads
        self.sim = Simulation(sc)

    def train(self, groups: list[list[Any]], bases: dict[str, Any] | None) -> list[list[Any]]:
        import torch

        if bases:
            with torch.no_grad():
                for s in self.sim.sites:
                    s.base.copy_(bases[s.prefix])
        return [self.sim.train_group(g) for g in groups]


class RayPool:
    """Spreads a round's client training over ``n_actors`` Ray actors.

    The round's groups of jobs (see ``Simulation._train_round``) go to actors in turn
    (group i to actor i mod n), each trained as the local backend trains it; the
    updates come back in the jobs' order. With a merging aggregator the current base
    weights of the adapted layers go along each round (one object in the store,
    shared by the actors).
    """

    def __init__(self, sim: Any, address: str | None, n_actors: int | None) -> None:
        import torch

        ray = self.ray = start(address, key="compute.ray_address")
        threads = sim.sc.compute.torch_threads or torch.get_num_threads()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = n_actors or max(1, cpus // threads)
        actor = ray.remote(TrainerActor).options(num_cpus=threads, max_restarts=1,
                                                 max_task_retries=1)
        scenario = sim.sc.model_dump(mode="json")
        self.actors = [actor.remote(scenario, threads) for _ in range(n)]
        self.merges = sim.aggregator.merges_into_base
        self.sim = sim

    def train(self, groups: list[list[Any]]) -> list[Any]:
        n = len(self.actors)
        bases = None
        if self.merges:
            bases = self.ray.put({s.prefix: s.base.detach().cpu() for s in self.sim.sites})
        shares = [groups[i::n] for i in range(n)]
        refs = [a.train.remote(c, bases) for a, c in zip(self.actors, shares, strict=True)
                if c]
        results = self.ray.get(refs)
        done: list[Any] = [None] * len(groups)
        for i, res in enumerate(results):
            done[i::n] = res
        return [u for g in done for u in g]

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
