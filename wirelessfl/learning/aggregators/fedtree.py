"""FedTreeLoRA (after Bian et al., arXiv 2603.13282): layer-wise tree aggregation.

The paper has no public code; this is the rule we implement (docs/aggregators.md):

1. **Warm-up.** For ``warmup_rounds`` rounds every layer is shared: FedIT averaging.
2. **Tree.** After the warm-up, one agglomerative clustering (average linkage) of the
   clients by ``D_ij = (1/L) sum_l ||B_{l,i} - B_{l,j}||_F`` over the transformer
   layers l (the B factors of a layer's adapted matrices, concatenated) gives a
   binary tree; cutting it at c clusters gives nested partitions ``P_c``.
3. **Per-layer cuts, shallow to deep.** Starting from ``c_0 = 1``, layer l takes
   ``c_l = argmax_{c in W_l} phi_l(c)`` over ``W_l = {c_{l-1}, ..., c_{l-1} + window - 1}``
   (capped at the number of clients), with ``phi(1) = silhouette_threshold`` and
   ``phi(c >= 2)`` the silhouette of ``P_c`` under layer l's distances. Clusters
   can only get finer with depth: a shared trunk, then branches.
4. **Personal adapters.** For client k and layer l, the cluster expert is the
   sample-weighted mean of the factors (A and B separately) over the received
   clients of k's cluster, the external expert the same over the other received
   clients; k receives ``mix * cluster + (1 - mix) * external`` (only the cluster
   mean when the layer is shared or no outsider arrived). A cluster none of whose
   members arrived keeps its previous adapter for that layer.

The classifier head and the global model (for global accuracy) are the FedIT
average over every received client. With one cluster in every layer the rule is
exactly FedIT. Differences from the paper: sample-weighted rather than uniform
means, and a fixed mixing weight on the factors instead of a learned gate between
two experts in the forward pass.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from wirelessfl.learning.adapter import State
from wirelessfl.learning.aggregators.base import (
    Aggregator,
    register_aggregator,
    sample_weights,
    weighted_average,
)
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.lora import LoraSite

_LAYER = re.compile(r"\.layer\.(\d+)\.")


class FedTreeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warmup_rounds: int = Field(2, ge=1, le=1_000_000,
                               description="FedIT rounds before the tree is built")
    silhouette_threshold: float = Field(
        0.1, ge=-1, le=1, description="score of one shared cluster (phi(1))"
    )
    window: int = Field(3, ge=1, le=1000, description="cluster counts tried per layer (K_win)")
    mix: float = Field(0.8, ge=0, le=1, description="weight of the cluster expert")


def silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of a clustering under a precomputed distance matrix.

    ``s_i = (b_i - a_i) / max(a_i, b_i)``: a_i mean distance to its own cluster
    (0 for a singleton, whose s_i is 0), b_i the smallest mean distance to another
    cluster. One cluster (or all singletons) scores 0.
    """
    clusters = np.unique(labels)
    n = len(labels)
    if len(clusters) < 2 or len(clusters) == n:
        return 0.0
    s = np.zeros(n)
    for i in range(n):
        own = labels == labels[i]
        if own.sum() == 1:
            continue
        a = dist[i, own].sum() / (own.sum() - 1)
        b = min(dist[i, labels == c].mean() for c in clusters if c != labels[i])
        s[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(s.mean())


def layer_groups(sites: list[LoraSite]) -> list[list[LoraSite]]:
    """Sites grouped by transformer layer index, shallow to deep (no index: first)."""
    groups: dict[int, list[LoraSite]] = {}
    for s in sites:
        m = _LAYER.search(s.prefix)
        groups.setdefault(int(m.group(1)) if m else -1, []).append(s)
    return [groups[k] for k in sorted(groups)]


def pairwise(vectors: list[torch.Tensor]) -> np.ndarray:
    """Euclidean distance matrix of flattened tensors, (n, n)."""
    x = torch.stack([v.double().flatten() for v in vectors])
    return torch.cdist(x, x).numpy()


def layer_cuts(dists: list[np.ndarray], tree: np.ndarray, threshold: float,
               window: int) -> list[int]:
    """Cluster count per layer by the windowed silhouette rule (non-decreasing)."""
    n = dists[0].shape[0]
    cuts, prev = [], 1
    for d in dists:
        best, best_c = -np.inf, prev
        for c in range(prev, min(n, prev + window - 1) + 1):
            score = threshold if c == 1 else silhouette(d, fcluster(tree, c, "maxclust"))
            if score > best:
                best, best_c = score, c
        cuts.append(best_c)
        prev = best_c
    return cuts


@register_aggregator("fedtree")
class FedTreeLoRA(Aggregator):
    """Layer-wise tree-structured personalised aggregation."""

    needs_lora = True

    Params = FedTreeParams
    personalized = True

    def setup(self, sites: list[LoraSite], initial_state: State) -> None:
        super().setup(sites, initial_state)
        self.layers = layer_groups(sites)
        self.rounds_seen = 0
        self.last_b: dict[int, list[torch.Tensor]] = {}  # client -> per-layer B vector
        self.clients: list[int] = []  # clients in the tree, in its order
        self.labels: list[np.ndarray] = []  # per layer: cluster label per tree client
        self.cuts: list[int] = []
        self.personal: dict[int, State] = {}

    def client_state(self, global_state: State, client_id: int, rank: int,
                     generator: torch.Generator) -> State:
        state = self.personal.get(client_id, global_state)
        return super().client_state(state, client_id, rank, generator)

    def personal_state(self, client_id: int) -> State | None:
        return self.personal.get(client_id)

    def _remember(self, updates: list[ClientUpdate]) -> None:
        for u in updates:
            self.last_b[u.client_id] = [torch.cat([u.state[s.b].flatten() for s in layer])
                                        for layer in self.layers]

    def _build_tree(self) -> None:
        self.clients = sorted(self.last_b)
        n = len(self.clients)
        dists = [pairwise([self.last_b[k][layer] for k in self.clients])
                 for layer in range(len(self.layers))]
        if n < 2:
            self.cuts = [1] * len(self.layers)
            self.labels = [np.ones(n, dtype=int) for _ in self.layers]
            return
        mean = sum(dists) / len(dists)
        tree = linkage(squareform(mean, checks=False), method="average")
        self.cuts = layer_cuts(dists, tree, self.params.silhouette_threshold,
                               self.params.window)
        self.labels = [fcluster(tree, c, "maxclust") for c in self.cuts]

    def aggregate(self, global_state: State,
                  updates: list[ClientUpdate]) -> tuple[State, dict[str, float]]:
        p = sample_weights(updates)
        new_global = {n: weighted_average([u.state[n] for u in updates], p)
                      for n in global_state}
        self._remember(updates)
        self.rounds_seen += 1
        if self.rounds_seen < self.params.warmup_rounds:
            return new_global, {"fedtree_clusters_mean": 1.0}
        if not self.clients:
            self._build_tree()
        index = {k: i for i, k in enumerate(self.clients)}
        got = {u.client_id: (u, float(w)) for u, w in zip(updates, p, strict=True)}
        for k in self.clients:
            own = self.personal.get(k, global_state)
            pers = {n: t.clone() for n, t in own.items()}
            for n in global_state:  # non-LoRA tensors (the head) follow the global model
                if not any(n in (s.a, s.b) for s in self.sites):
                    pers[n] = new_global[n]
            for layer, labels, c in zip(self.layers, self.labels, self.cuts, strict=True):
                mine = labels[index[k]]
                if c == 1:  # a shared layer: everyone, late joiners included
                    inside, outside = list(got.values()), []
                else:
                    inside = [got[j] for j in got if j in index and labels[index[j]] == mine]
                    outside = [got[j] for j in got
                               if j not in index or labels[index[j]] != mine]
                if not inside:
                    continue  # no member of k's cluster arrived: keep k's adapter
                for s in layer:
                    for n in (s.a, s.b):
                        cl = _mean([u.state[n] for u, _ in inside], [w for _, w in inside])
                        if outside and self.params.mix < 1:
                            ex = _mean([u.state[n] for u, _ in outside],
                                       [w for _, w in outside])
                            cl = self.params.mix * cl + (1 - self.params.mix) * ex
                        pers[n] = cl
            self.personal[k] = pers
        return new_global, {"fedtree_clusters_mean": float(np.mean(self.cuts)),
                            "fedtree_clusters_deepest": float(self.cuts[-1])}


def _mean(tensors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    w = torch.tensor(weights, dtype=torch.float64)
    return weighted_average(tensors, w / w.sum())
