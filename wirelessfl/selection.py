"""Client selection: which clients take part in a round. A selector is one small class.

A selector sees what the server knows at the round start (:class:`SelectionView`)
and returns the selected client indices. The built-ins:

``random``
    ``n`` clients uniformly without replacement (all of them when ``n = K``, with no
    random draw), the FedAvg default.
``all``
    Every client every round (``clients.fraction`` must be 1).
``round_robin``
    Consecutive windows of ``n`` clients, wrapping around: every client is selected
    once every ``ceil(K / n)`` rounds.
``channel_aware``
    The ``n`` clients with the best estimated round-start channel (large-scale gain
    times the CSI fading estimate); a share ``exploration`` of the slots is drawn at
    random from the others, so no client is starved for ever.

Packages add selectors through the ``wirelessfl.selectors`` entry-point group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.errors import PluginError
from wirelessfl.registry import NoParams, Registry


@dataclass
class SelectionView:
    """What a selector may look at in round ``round`` (K clients).

    Attributes
    ----------
    round : int
    count : int
        K, the number of clients.
    n : int
        How many to select (``round(clients.fraction * K)``, at least 1).
    gain_db : ndarray, shape (K,)
        Large-scale gains at the round start, dB.
    estimated_fading : ndarray, shape (K,)
        The CSI fading estimate at the round start (unit-mean power gain); the same
        estimate the controller then plans with.
    """

    round: int
    count: int
    n: int
    gain_db: np.ndarray
    estimated_fading: np.ndarray


class Selector(ABC):
    """Chooses the clients of a round; subclasses set ``Params`` and :meth:`select`."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    #: False for selectors that ignore ``clients.fraction`` (every client, every round).
    uses_fraction: ClassVar[bool] = True
    #: True for selectors that read every client's CSI (``view.estimated_fading``),
    #: which a lazily drawn population does not have
    reads_csi: ClassVar[bool] = False

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def select(self, view: SelectionView, rng: np.random.Generator) -> np.ndarray:
        """Sorted distinct client indices, shape (view.n,)."""


SELECTORS: Registry[Selector] = Registry("client selector", Selector)


def n_selected(selector: Selector, count: int, fraction: float) -> int:
    """Clients a round selects: ``round(fraction K)``, at least 1, or all of them when
    the selector takes no fraction."""
    if not selector.uses_fraction:
        return count
    return max(1, int(round(fraction * count)))


def select(selector: Selector, view: SelectionView, rng: np.random.Generator) -> np.ndarray:
    """The round's clients, sorted, after checking what ``selector`` returned.

    Raises
    ------
    PluginError
        Naming ``clients.selection`` when the selector returns anything but distinct
        client indices in ``[0, K)``.
    """
    k = view.count
    sel = np.asarray(selector.select(view, rng), dtype=int)
    if (sel.ndim != 1 or len(sel) == 0 or len(np.unique(sel)) != len(sel)
            or sel.min() < 0 or sel.max() >= k):
        raise PluginError("clients.selection", f"selector {selector.name!r} returned "
                          f"{sel.tolist()[:8]}: distinct client indices in [0, {k}) needed")
    return np.sort(sel)


@SELECTORS.register("random")
class RandomSelector(Selector):
    """n clients uniformly at random without replacement."""

    def select(self, view: SelectionView, rng: np.random.Generator) -> np.ndarray:
        if view.n >= view.count:
            return np.arange(view.count)
        return np.sort(rng.choice(view.count, view.n, replace=False))


@SELECTORS.register("all")
class AllSelector(Selector):
    """Every client every round."""

    uses_fraction = False

    def select(self, view: SelectionView, rng: np.random.Generator) -> np.ndarray:
        return np.arange(view.count)


@SELECTORS.register("round_robin")
class RoundRobin(Selector):
    """Consecutive windows of n clients, wrapping around."""

    def select(self, view: SelectionView, rng: np.random.Generator) -> np.ndarray:
        start = (view.round * view.n) % view.count
        return np.sort((start + np.arange(view.n)) % view.count)


class ChannelAwareParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exploration: float = Field(0.0, ge=0, le=1, allow_inf_nan=False,
                               description="share of the slots drawn at random from the "
                                           "clients not chosen by channel")


@SELECTORS.register("channel_aware")
class ChannelAware(Selector):
    """The n best estimated channels; a share of the slots explores at random."""

    Params = ChannelAwareParams
    reads_csi = True

    def select(self, view: SelectionView, rng: np.random.Generator) -> np.ndarray:
        snr_db = view.gain_db + 10 * np.log10(np.maximum(view.estimated_fading, 1e-300))
        n_explore = int(round(self.params.exploration * view.n))
        order = np.lexsort((np.arange(view.count), -snr_db))  # best first, ties by index
        best = order[: view.n - n_explore]
        if n_explore:
            rest = np.setdiff1d(np.arange(view.count), best)
            best = np.concatenate([best, rng.choice(rest, n_explore, replace=False)])
        return np.sort(best)
