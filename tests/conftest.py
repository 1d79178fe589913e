"""Shared fixtures: a tiny scenario that runs the whole pipeline in about a second."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = {
    "name": "tiny",
    "seed": 3,
    "rounds": 3,
    "clients": {"count": 3, "local_steps": 2, "batch_size": 8, "learning_rate": 0.01,
                "device": "jetson"},
    "radio": {"uplink_bandwidth_hz": 1.0e6},
    "channel": {"fading": {"model": "rayleigh", "coherence_time_s": 0.005}},
    "model": {"name": "tiny-bert", "max_length": 12, "lora": {"rank": 2, "alpha": 4}},
    "data": {"name": "synthetic", "synthetic": {"num_samples": 150, "num_classes": 3},
             "partition": {"scheme": "dirichlet", "alpha": 1.0, "min_samples": 4}},
    "output": {"plots": False},
}


@pytest.fixture
def tiny_raw():
    import copy

    return copy.deepcopy(TINY)
