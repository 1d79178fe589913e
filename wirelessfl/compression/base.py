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

from channels.base import NoParams, Registry
from wirelessfl.learning.adapter import State
from wirelessfl.learning.client import ClientUpdate

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
    """Turns a client's update into a payload."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def payload_bits(self, numels: dict[str, int], bits_per_value: int,
                     keep_ranks: int | None) -> int:
        """Bits of a payload for tensors with these element counts (for planning)."""

    @abstractmethod
    def compress(self, update: ClientUpdate, global_state: State, bits_per_value: int,
                 keep_ranks: int | None, rng: np.random.Generator) -> Compressed:
        """Compress ``update`` (trained from ``global_state``)."""
