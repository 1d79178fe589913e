"""The aggregator interface and registry.

An aggregator turns the updates that reached the server in time into the next
global adapter state. One class per file, registered by name
(``method.aggregator``), options validated by its ``Params`` model
(``method.aggregator_options``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from pydantic import BaseModel

from wirelessfl.learning.adapter import State
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.learning.lora import LoraSite, truncate
from wirelessfl.registry import NoParams, Registry

AGGREGATORS: Registry[Aggregator] = Registry("aggregator")
register_aggregator = AGGREGATORS.register


def sample_weights(updates: list[ClientUpdate]) -> torch.Tensor:
    """``p_k = n_k / sum_j n_j`` over the received updates, shape (K,)."""
    n = torch.tensor([float(u.num_samples) for u in updates], dtype=torch.float64)
    return n / n.sum()


def weighted_average(tensors: list[torch.Tensor], p: torch.Tensor) -> torch.Tensor:
    """``sum_k p_k T_k`` in float64, returned as float32."""
    acc = torch.zeros_like(tensors[0], dtype=torch.float64)
    for t, w in zip(tensors, p, strict=True):
        acc += w * t.to(torch.float64)
    return acc.to(torch.float32)


class Aggregator(ABC):
    """Combines client updates into the new global adapter state.

    The round loop calls the hooks in this order: :meth:`frozen` (once, before
    training starts), :meth:`setup` (once), then every round
    :meth:`downlink_numels`, :meth:`client_state` per client, and
    :meth:`aggregate`. Only :meth:`aggregate` is abstract; the defaults describe
    FedIT-style methods whose global adapter persists across rounds.

    Attributes
    ----------
    name : str
        Registry name.
    Params : type[BaseModel]
        Options accepted in ``method.aggregator_options``.
    merges_into_base : bool
        True for methods that fold updates into the base weights (FLoRA, FLoRIST);
        the final adapter is then exported from the total weight change.
    personalized : bool
        True for methods that give clients their own adapters (FedTreeLoRA); their
        per-client accuracy is evaluated on each client's own test split.
    needs_lora : bool
        True for methods that work on LoRA factors (they refuse other adapters).
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    merges_into_base: ClassVar[bool] = False
    needs_lora: ClassVar[bool] = False

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.sites: list[LoraSite] = []
        self.full_rank = 0

    def frozen(self, name: str) -> bool:
        """Whether the trainable parameter ``name`` is frozen (never trained or sent)."""
        return False

    def setup(self, sites: list[LoraSite], initial_state: State) -> None:
        """Learn the model's adapted matrices before round 0."""
        self.sites = sites
        self.full_rank = max((s.rank for s in sites), default=0)

    personalized: ClassVar[bool] = False

    def client_state(self, global_state: State, client_id: int, rank: int,
                     generator: torch.Generator) -> State:
        """The adapter client ``client_id`` (of ``rank``) starts its local training from."""
        return global_state if rank >= self.full_rank else truncate(global_state, rank)

    def personal_state(self, client_id: int) -> State | None:
        """A personalised method's adapter for one client (None: the global one)."""
        return None

    def downlink_numels(self, global_state: State) -> int:
        """Values the server broadcasts at the start of a round."""
        return int(sum(t.numel() for t in global_state.values()))

    @abstractmethod
    def aggregate(self, global_state: State,
                  updates: list[ClientUpdate]) -> tuple[State, dict[str, float]]:
        """New global state and per-round metrics (for ``metrics.csv``).

        Parameters
        ----------
        global_state : dict of str to Tensor
            The adapter the clients started the round from.
        updates : list of ClientUpdate
            The updates received in time (non-empty).
        """


AGGREGATORS.base = Aggregator
