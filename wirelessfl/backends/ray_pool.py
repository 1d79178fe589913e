"""One run's client training spread over Ray actors (``compute.backend: ray``).

Each actor builds the run's workbench once from the factory it is given (as Flower's
``client_fn``): the same model, data, shards, masks and penalty as the driver's, so a
client trained there is bit for bit the client the local pool trains, given the same
thread count. Only adapters travel, never models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wirelessfl.backends import ray as ray_backend
from wirelessfl.learning.client import ClientUpdate, TrainJob
from wirelessfl.learning.workbench import Workbench, groups


class TrainerActor:
    """Holds a workbench (the frozen base model once) and trains the groups it is given."""

    def __init__(self, factory: Callable[[], Workbench], threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.bench = factory()

    def train(self, groups_: list[list[TrainJob]],
              bases: dict[str, Any] | None) -> list[list[ClientUpdate]]:
        if bases:
            self.bench.set_base_weights(bases)
        return [self.bench.train_group(g) for g in groups_]


class RayPool:
    """Spreads a round's client training over ``n_actors`` Ray actors.

    The jobs are cut into the groups the local pool would train
    (:func:`~wirelessfl.learning.workbench.groups`); group i goes to actor i mod n and
    the updates come back in the jobs' order. With a merging aggregator the current
    base weights of the adapted layers go along each round (one object in the store,
    shared by the actors).

    Parameters
    ----------
    bench : Workbench
        The driver's workbench (group size, base weights).
    factory : callable
        ``factory() -> Workbench``, picklable: what each actor builds.
    threads : int
        Torch threads (and Ray CPUs) per actor.
    address : str or None
        A running Ray cluster; None starts a local Ray (shut down by :meth:`close`).
    n_actors : int or None
        Default: the cluster's CPUs divided by ``threads``.
    """

    def __init__(self, bench: Workbench, factory: Callable[[], Workbench], threads: int,
                 address: str | None, n_actors: int | None) -> None:
        ray = self.ray = ray_backend.start(address, key="compute.ray_address")
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = n_actors or max(1, cpus // threads)
        actor = ray.remote(TrainerActor).options(num_cpus=threads, max_restarts=1,
                                                 max_task_retries=1)
        self.actors = [actor.remote(factory, threads) for _ in range(n)]
        self.bench = bench

    def train(self, jobs: list[TrainJob]) -> list[ClientUpdate]:
        n = len(self.actors)
        parts = groups(jobs, self.bench.clients_per_pass)
        bases = self.ray.put(self.bench.base_weights()) if self.bench.merging else None
        shares = [parts[i::n] for i in range(n)]
        refs = [a.train.remote(c, bases) for a, c in zip(self.actors, shares, strict=True)
                if c]
        results = self.ray.get(refs)
        done: list[Any] = [None] * len(parts)
        for i, res in enumerate(results):
            done[i::n] = res
        return [u for g in done for u in g]

    def close(self) -> None:
        """Kill the actors, and shut down the Ray this pool started (if it did)."""
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
        ray_backend.stop()
