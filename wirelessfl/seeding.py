"""Independent random streams per component, spawned from the scenario's one seed.

Each component draws from its own ``numpy.random.Generator`` keyed by a fixed
component id (and a client index or round where needed). Switching the aggregator
or the controller therefore leaves the channel, placement and data draws unchanged
(common random numbers), and no code reseeds a global generator.
"""

from __future__ import annotations

import numpy as np

# Fixed ids: never renumber, or old seeds would give new draws.
COMPONENTS = {
    "placement": 0,
    "shadowing": 1,
    "channel": 2,
    "data": 3,
    "partition": 4,
    "client": 5,
    "torch_init": 6,
    "sampling": 7,
    "controller": 8,
    "compressor": 9,
    "csi": 10,
    "mobility": 11,
    "planning": 12,
}


def seed_sequence(seed: int, component: str, *keys: int) -> np.random.SeedSequence:
    """The seed sequence of ``component`` (and optional integer sub-keys)."""
    return np.random.SeedSequence(entropy=seed, spawn_key=(COMPONENTS[component], *keys))


def rng(seed: int, component: str, *keys: int) -> np.random.Generator:
    """A numpy Generator for ``component``; same arguments, same stream."""
    return np.random.default_rng(seed_sequence(seed, component, *keys))


def int_seed(seed: int, component: str, *keys: int) -> int:
    """A 63-bit integer seed for libraries that take one (torch)."""
    return int(seed_sequence(seed, component, *keys).generate_state(1, dtype=np.uint64)[0] >> 1)
