"""Bandwidth / sparsification controllers; importing this package registers them."""

from wirelessfl.control import baselines, equal, tsfa  # noqa: F401
from wirelessfl.control.base import (
    CONTROLLERS,
    Allocation,
    Controller,
    LatencyQueue,
    Preparation,
    RoundContext,
    register_controller,
)

__all__ = ["CONTROLLERS", "Allocation", "Controller", "LatencyQueue", "Preparation",
           "RoundContext", "register_controller"]
