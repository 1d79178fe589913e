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

from channels.base import NoParams, Registry
from wirelessfl.learning.adapter import State
from wirelessfl.learning.client import ClientUpdate

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

    Attributes
    ----------
    name : str
        Registry name.
    Params : type[BaseModel]
        Options accepted in ``method.aggregator_options``.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

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
