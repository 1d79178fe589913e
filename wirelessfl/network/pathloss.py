"""Large-scale gain models: path loss in dB plus log-normal shadowing.

A path-loss model is a small class registered by name (``channel.pathloss.model``)
with its YAML parameters as a pydantic ``Params`` model, like the fading plug-ins.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.registry import Registry

SPEED_OF_LIGHT_M_S = 299_792_458.0

PATHLOSS: Registry[PathLoss] = Registry("path-loss model")


class PathLoss(ABC):
    """Distance -> large-scale gain: path loss plus a per-client shadowing draw.

    :meth:`draw` fixes each client's random state once (its shadowing ``X_k``, and
    its LOS state for models that have one); :meth:`gain_db` then gives the gain at
    any distance, so a moving client keeps its shadowing.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]]

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.shadow_db: np.ndarray | float = 0.0

    @abstractmethod
    def loss_db(self, distance_m: np.ndarray) -> np.ndarray:
        """Median path loss in dB, same shape as ``distance_m`` (metres)."""

    @property
    def shadowing_std_db(self) -> float:
        return float(getattr(self.params, "shadowing_std_db", 0.0))

    def draw(self, distance_m: np.ndarray, rng: np.random.Generator) -> None:
        """Draw the clients' shadowing ``X_k ~ N(0, shadowing_std_db^2)`` (dB)."""
        self.shadow_db = rng.standard_normal(np.shape(distance_m)) * self.shadowing_std_db

    def gain_db(self, distance_m: np.ndarray) -> np.ndarray:
        """Large-scale gain ``-PL(d) + X``, dB, shape of ``distance_m``."""
        return -self.loss_db(np.asarray(distance_m, dtype=float)) + self.shadow_db


PATHLOSS.base = PathLoss


class LogDistanceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exponent: float = Field(3.76, ge=1, le=10,
                            description="path-loss exponent n (free space 2)")
    reference_distance_m: float = Field(1000.0, ge=0.01, le=1e5,
                                        description="reference distance d0, m")
    reference_loss_db: float = Field(128.1, ge=0, le=300,
                                     description="loss at d0 (128.1 dB: TR 36.814 macro)")
    shadowing_std_db: float = Field(8.0, ge=0, le=30, description="log-normal shadowing std")


@PATHLOSS.register("log_distance")
class LogDistance(PathLoss):
    """``PL(d) = PL(d0) + 10 n log10(d / d0)`` dB.

    The defaults (``PL(1 km) = 128.1`` dB, ``n = 3.76``, 8 dB shadowing) are the
    3GPP TR 36.814 macro-cell model at 2 GHz: ``128.1 + 37.6 log10(d_km)``.
    """

    Params = LogDistanceParams

    def loss_db(self, distance_m: np.ndarray) -> np.ndarray:
        p = self.params
        d = np.asarray(distance_m, dtype=float)
        return p.reference_loss_db + 10.0 * p.exponent * np.log10(d / p.reference_distance_m)


class FreeSpaceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    carrier_frequency_hz: float = Field(3.5e9, ge=1e6, le=1e12,
                                        description="carrier frequency f_c")
    shadowing_std_db: float = Field(0.0, ge=0, le=30, description="log-normal shadowing std")


@PATHLOSS.register("free_space")
class FreeSpace(PathLoss):
    """Friis free-space loss ``20 log10(4 pi d f_c / c)`` dB."""

    Params = FreeSpaceParams

    def loss_db(self, distance_m: np.ndarray) -> np.ndarray:
        d = np.asarray(distance_m, dtype=float)
        f = self.params.carrier_frequency_hz
        return 20.0 * np.log10(4.0 * np.pi * d * f / SPEED_OF_LIGHT_M_S)
