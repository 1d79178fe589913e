"""Splitting a data set: the held-out test set, the clients' training shards (IID or
Dirichlet over labels) and per-client test sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wirelessfl import seeding
from wirelessfl.errors import ScenarioError


@dataclass
class ClientShards:
    """Training shards per client, the held-out test indices, and per-client test sets.

    ``client_test[k]`` is drawn from the test set with client k's training label
    distribution (for personalised methods' accuracy).
    """

    train: list[np.ndarray]
    test: np.ndarray
    client_test: list[np.ndarray]


def client_test_sets(test: np.ndarray, labels: np.ndarray, shards: list[np.ndarray],
                     size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per-client test sets that follow each client's training label distribution.

    For client k, ``size`` test examples (at most the test set's size): labels drawn
    with k's training label frequencies, then an example of that label drawn
    uniformly from the test set (with replacement across clients, not within one).
    """
    classes = np.unique(labels)
    pools = {c: test[labels[test] == c] for c in classes}
    out = []
    for shard in shards:
        freq = np.array([np.sum(labels[shard] == c) for c in classes], dtype=float)
        counts = rng.multinomial(min(size, len(test)), freq / freq.sum())
        picks = [rng.choice(pools[c], size=min(n, len(pools[c])), replace=False)
                 for c, n in zip(classes, counts, strict=True) if n > 0]
        out.append(np.sort(np.concatenate(picks)) if picks else test[:1])
    return out


def split_shards(sc: Any, data: Any) -> ClientShards:
    """The scenario's split of ``data`` (a TokenData): the data set's own test set when it
    has one (``held_out``), else a test set stratified by its strata (class, else group);
    client shards (``data.partition``) of the rest; per-client test sets."""
    labels = data.strata
    held = getattr(data, "held_out", None)
    if held is not None:  # the data set's own test set
        train, test = np.flatnonzero(~held), np.flatnonzero(held)
    else:
        train, test = stratified_split(labels, sc.data.test_fraction,
                                       seeding.rng(sc.seed, "data", 1))
    part = sc.data.partition
    prng = seeding.rng(sc.seed, "partition")
    if part.scheme == "iid":
        shards = iid_partition(train, sc.clients.count, prng)
    elif part.scheme == "natural":
        if data.groups is None:
            raise ScenarioError("data.partition.column", f"the data set gives no column "
                                f"{part.column!r} to split by")
        shards = natural_partition(train, np.asarray(data.groups), sc.clients.count, prng)
    else:
        shards = dirichlet_partition(train, labels, sc.clients.count, part.alpha, prng,
                                     part.min_samples)
    personal = client_test_sets(test, labels, shards, sc.eval.personal_examples,
                                seeding.rng(sc.seed, "data", 2))
    cap = sc.eval.max_examples
    if cap is not None and cap < len(test):  # a fixed subset bounds every evaluation
        test = np.sort(seeding.rng(sc.seed, "data", 3).choice(test, size=cap, replace=False))
    return ClientShards(shards, test, personal)


def stratified_split(labels: np.ndarray, test_fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with the test share of every class equal to ``test_fraction``."""
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def iid_partition(indices: np.ndarray, n_clients: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle and deal ``indices`` into ``n_clients`` near-equal shards."""
    perm = rng.permutation(indices)
    return [np.sort(s) for s in np.array_split(perm, n_clients)]


def natural_partition(indices: np.ndarray, groups: np.ndarray, n_clients: int,
                      rng: np.random.Generator) -> list[np.ndarray]:
    """Shards by the value of a group column (a natural partition).

    With at least as many values G as clients K, value g (in order of its code) goes
    whole to client ``g mod K``: every example of a value is on one client. With fewer
    values, client k takes value ``k mod G``, and a value's examples are shuffled and
    dealt near-equally among the clients that take it.

    Raises
    ------
    ScenarioError
        When a client would get no example (naming ``data.partition.column``).
    """
    values = np.unique(groups[indices])
    buckets: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
    if len(values) >= n_clients:
        for g, v in enumerate(values):
            buckets[g % n_clients].append(indices[groups[indices] == v])
    else:
        for g, v in enumerate(values):
            owners = list(range(g, n_clients, len(values)))
            mine = rng.permutation(indices[groups[indices] == v])
            for k, part in zip(owners, np.array_split(mine, len(owners)), strict=True):
                buckets[k].append(part)
    shards = [np.sort(np.concatenate(b)) if b else np.zeros(0, dtype=indices.dtype)
              for b in buckets]
    empty = [k for k, sh in enumerate(shards) if len(sh) == 0]
    if empty:
        raise ScenarioError("data.partition.column", f"client {empty[0]} gets no example: "
                            f"{len(values)} values for {n_clients} clients; use fewer clients")
    return shards


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
