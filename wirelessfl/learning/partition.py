"""Splitting the training set among clients: IID and Dirichlet over labels."""

from __future__ import annotations

import numpy as np

from wirelessfl.errors import ScenarioError


def iid_partition(indices: np.ndarray, n_clients: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle and deal ``indices`` into ``n_clients`` near-equal shards."""
    perm = rng.permutation(indices)
    return [np.sort(s) for s in np.array_split(perm, n_clients)]


def dirichlet_partition(indices: np.ndarray, labels: np.ndarray, n_clients: int, alpha: float,
                        rng: np.random.Generator, min_samples: int = 1,
                        max_tries: int = 1000) -> list[np.ndarray]:
    """Label-skewed shards: for each class, client shares ~ Dirichlet(alpha * 1).

    Redraws (up to ``max_tries`` times) until every client holds at least
    ``min_samples`` examples, as in the NIID-Bench protocol.

    Parameters
    ----------
    indices : ndarray, shape (N,)
        Training example indices into ``labels``.
    labels : ndarray, shape (N_total,)
        Integer label of every example.
    """
    if n_clients * min_samples > len(indices):
        raise ScenarioError(
            "data.partition.min_samples",
            f"{n_clients} clients x {min_samples} examples exceed the {len(indices)} "
            "training examples; lower min_samples or clients.count",
        )
    y = labels[indices]
    classes = np.unique(y)
    for _ in range(max_tries):
        shards: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for c in classes:
            idx = rng.permutation(indices[y == c])
            p = rng.dirichlet(np.full(n_clients, alpha))
            cuts = (np.cumsum(p)[:-1] * len(idx)).astype(int)
            for k, part in enumerate(np.split(idx, cuts)):
                shards[k].append(part)
        out = [np.sort(np.concatenate(s)) for s in shards]
        if min(len(s) for s in out) >= min_samples:
            return out
    raise ScenarioError(
        "data.partition.alpha",
        f"no Dirichlet({alpha}) split gave every client {min_samples} examples in "
        f"{max_tries} draws; raise alpha or lower data.partition.min_samples",
    )
