"""The compressor interface and registry.

A compressor decides what a client puts on the air: it returns the update as the
server will reconstruct it and the exact payload size in bits. The controller
chooses ``keep_ranks`` (LoRA ranks to send per adapted matrix, ``None`` = all).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from wirelessfl.learning.adapter import State
from wirelessfl.learning.client import ClientUpdate
from wirelessfl.registry import NoParams, Registry

COMPRESSORS: Registry[Compressor] = Registry("compressor")
register_compressor = COMPRESSORS.register


@dataclass
class Compressed:
    """What the server receives from one client.

    Attributes
    ----------
    update : ClientUpdate
        The update as reconstructed at the server.
    payload_bits : int
        Bits on the air (values and any index overhead).
    metrics : dict
        Per-client values for ``clients.csv``.
    """

    update: ClientUpdate
    payload_bits: int
    metrics: dict[str, float] = field(default_factory=dict)


class Compressor(ABC):
    """Turns a client's update into a payload.

    Attributes
    ----------
    sparsifies : bool
        Whether ``keep_ranks`` changes what is sent (the controller may then send
        fewer than all ranks).
    needs_lora : bool
        Whether it works on LoRA factors (other adapters are refused).
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    sparsifies: ClassVar[bool] = False
    needs_lora: ClassVar[bool] = False

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def payload_bits(self, shapes: dict[str, tuple[int, ...]], rank: int, bits_per_value: int,
                     keep_ranks: int | None) -> int:
        """Bits of the payload of a client of ``rank`` keeping ``keep_ranks`` (None: all).

        ``shapes`` are the allocated tensor shapes (all clients share them).
        """

    def error_profile(self, update: ClientUpdate, reference: State) -> np.ndarray | None:
        """Relative sparsification error ``eps(m)`` for ``m = 0 .. rank``, shape (rank + 1,).

        What the client reports to the controller: the squared relative error of the
        update the server will rebuild from m ranks (the rest from ``reference``, the
        global adapter), against the full update. None when nothing is sparsified.
        """
        return None

    def regularizer(self):
        """A penalty added to the clients' loss, or None.

        The penalty is a callable ``tensors -> Tensor`` on the trainable tensors by
        parameter name. Batched training passes them with a leading client axis
        (``(K, ...)``) and expects one value per client back (shape (K,)); written
        with ``@``, ``.mT`` and reductions over the last axes, one function serves
        both.
        """
        return None

    @abstractmethod
    def compress(self, update: ClientUpdate, global_state: State, bits_per_value: int,
                 keep_ranks: int | None, rng: np.random.Generator) -> Compressed:
        """Compress ``update`` (trained from ``global_state``)."""


COMPRESSORS.base = Compressor


def error_profiles(compressor: Compressor, updates: list[ClientUpdate], reference: State,
                   alloc_rank: int) -> np.ndarray | None:
    """Every client's reported ``eps_k(m)``, m = 0..R, shape (n, R + 1); None if the
    compressor does not sparsify.

    ``R = alloc_rank``: entries above a client's own rank are 0 (those ranks lose
    nothing); a client whose update is not finite reports no error (it will not
    send).
    """
    if not compressor.sparsifies:
        return None
    out = np.zeros((len(updates), alloc_rank + 1))
    for i, u in enumerate(updates):
        if not u.finite:
            continue
        e = compressor.error_profile(u, reference)
        out[i, : len(e)] = e
    return out
