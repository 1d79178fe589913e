"""Ray plumbing: connect to (or start) Ray, shut down a Ray this process started, and
ship results folders between machines.

Used by sweeps (``wirelessfl sweep --backend ray``, :mod:`wirelessfl.sweeper`) and by
the training pool of one run (``compute.backend: ray``,
:mod:`wirelessfl.backends.ray_pool`). Ray is an optional extra (``pip install -e
'.[ray]'``), imported only here and only when one of those asks for it.
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
