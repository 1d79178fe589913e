"""Splitting a data set: the held-out test set, the clients' training shards (IID or
Dirichlet over labels) and per-client test sets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wirelessfl import seeding
from wirelessfl.errors import ScenarioError


class RangeShards(Sequence):
    """Clients' training shards held as index ranges: shard k is the sorted union over
    parts p of ``order_p[cuts_p[k] : cuts_p[k + 1]]``.

    One permutation (IID) or one per class (Dirichlet) and K + 1 cut points each: 8
    bytes a client and part, instead of an array object per client. A shard is built
    when asked for, equal to the list the same draws would give.
    """

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return len(self.parts[0][1]) - 1

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = int(k)
        if not -len(self) <= k < len(self):
            raise IndexError(k)
        k %= len(self)
        pieces = [order[cuts[k] : cuts[k + 1]] for order, cuts in self.parts]
        return np.sort(np.concatenate(pieces) if len(pieces) > 1 else pieces[0])

    def sizes(self) -> np.ndarray:
        """Examples of every client, shape (K,)."""
        return sum(np.diff(cuts) for _, cuts in self.parts)


def shard_sizes(shards: Sequence[np.ndarray]) -> np.ndarray:
    """Examples of every client, shape (K,)."""
    if isinstance(shards, RangeShards):
        return shards.sizes()
    return np.array([len(s) for s in shards], dtype=np.int64)


@dataclass
class ClientShards:
    """Training shards per client, the held-out test indices, and per-client test sets.

    ``client_test[k]`` is drawn from the test set with client k's training label
    distribution (for personalised methods' accuracy).
    """

    train: Sequence[np.ndarray]
    test: np.ndarray
    client_test: Sequence[np.ndarray]


def _one_client_test(test: np.ndarray, labels: np.ndarray, classes: np.ndarray,
                     pools: dict, shard: np.ndarray, size: int,
                     rng: np.random.Generator) -> np.ndarray:
    freq = np.array([np.sum(labels[shard] == c) for c in classes], dtype=float)
    counts = rng.multinomial(min(size, len(test)), freq / freq.sum())
    picks = [rng.choice(pools[c], size=min(n, len(pools[c])), replace=False)
             for c, n in zip(classes, counts, strict=True) if n > 0]
    return np.sort(np.concatenate(picks)) if picks else test[:1]


def client_test_sets(test: np.ndarray, labels: np.ndarray, shards: Sequence[np.ndarray],
                     size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per-client test sets that follow each client's training label distribution.

    For client k, ``size`` test examples (at most the test set's size): labels drawn
    with k's training label frequencies, then an example of that label drawn
    uniformly from the test set (with replacement across clients, not within one).
    """
    classes = np.unique(labels)
    pools = {c: test[labels[test] == c] for c in classes}
    return [_one_client_test(test, labels, classes, pools, shard, size, rng)
            for shard in shards]


class LazyClientTests(Sequence):
    """:func:`client_test_sets` of a lazily held population: client k's set is drawn
    when asked for, from its own stream ``(seed, "data", 2, k)``."""

    def __init__(self, test: np.ndarray, labels: np.ndarray, shards: Sequence[np.ndarray],
                 size: int, seed: int) -> None:
        self.test, self.labels, self.shards, self.size, self.seed = (test, labels, shards,
                                                                     size, seed)
        self.classes = np.unique(labels)
        self.pools = {c: test[labels[test] == c] for c in self.classes}

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = int(k) % len(self)
        return _one_client_test(self.test, self.labels, self.classes, self.pools,
                                self.shards[k], self.size, seeding.rng(self.seed, "data", 2, k))


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
    if sc.lazy_population:
        personal: Sequence[np.ndarray] = LazyClientTests(test, labels, shards,
                                                         sc.eval.personal_examples, sc.seed)
    else:
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
                  rng: np.random.Generator) -> RangeShards:
    """Shuffle and deal ``indices`` into ``n_clients`` near-equal shards (the first
    ``N mod K`` one example larger), held as ranges of the shuffle.

    Raises
    ------
    ScenarioError
        Naming ``clients.count`` when there are fewer examples than clients.
    """
    if n_clients > len(indices):
        raise ScenarioError("clients.count", f"{n_clients} clients share {len(indices)} "
                            "training examples: an IID deal gives every client at least "
                            "one; lower clients.count or use a larger data set")
    perm = rng.permutation(indices)
    n, k = len(perm), n_clients
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    return RangeShards([(perm, np.concatenate([[0], np.cumsum(sizes)]))])


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
    if n_clients > len(indices):
        raise ScenarioError("clients.count", f"{n_clients} clients share {len(indices)} "
                            "training examples: every client needs one; lower "
                            "clients.count or use a larger data set")
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
                        max_tries: int = 1000) -> RangeShards:
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
        parts = []
        for c in classes:
            idx = rng.permutation(indices[y == c])
            p = rng.dirichlet(np.full(n_clients, alpha))
            cuts = (np.cumsum(p)[:-1] * len(idx)).astype(int)
            parts.append((idx, np.concatenate([[0], cuts, [len(idx)]])))
        out = RangeShards(parts)
        if out.sizes().min() >= min_samples:
            return out
    raise ScenarioError(
        "data.partition.alpha",
        f"no Dirichlet({alpha}) split gave every client {min_samples} examples in "
        f"{max_tries} draws; raise alpha or lower data.partition.min_samples",
    )
