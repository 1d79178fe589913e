"""Training pools: where a round's client training runs.

The round loop hands a pool the round's :class:`~wirelessfl.learning.client.TrainJob`
list and gets the updates back in the same order. :class:`LocalPool` trains them in
this process on the run's workbench; ``wirelessfl.backends.ray_pool.RayPool``
spreads the same groups over Ray actors. Both cut the jobs into the same groups
(:func:`wirelessfl.learning.workbench.groups`), so the pool never changes a result.
"""

from __future__ import annotations

from typing import Protocol

from wirelessfl.learning.client import ClientUpdate, TrainJob
from wirelessfl.learning.workbench import Workbench


class TrainingPool(Protocol):
    """Trains a round's jobs; ``close`` releases what the pool holds."""

    def train(self, jobs: list[TrainJob]) -> list[ClientUpdate]:
        """The updates of ``jobs``, in their order."""
        ...

    def close(self) -> None:
        """Release the pool's workers (nothing for the local pool)."""
        ...


class LocalPool:
    """This process: the run's own workbench trains every job."""

    def __init__(self, bench: Workbench) -> None:
        self.bench = bench

    def train(self, jobs: list[TrainJob]) -> list[ClientUpdate]:
        return self.bench.train(jobs)

    def close(self) -> None:
        pass
