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


# ---------------------------------------------------------------- per-client keyed draws

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective 64-bit mixing of each element."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def keyed_uniforms(seed: int, component: str, keys: np.ndarray, draw: int,
                   *sub: int) -> np.ndarray:
    """Draw number ``draw`` of every key's own stream: uniforms on (0, 1), shape of ``keys``.

    A counter-based generator: element i is a hash of ``(seed, component, sub, keys[i],
    draw)`` (SplitMix64 mixing, 53-bit mantissa), so a client's draw depends on its
    index alone, never on which or how many other keys are drawn with it, and any set
    of clients is drawn in one vectorised call. Used for the state of a lazily held
    population (``clients.population: lazy``).
    """
    base = seed_sequence(seed, component, *sub).generate_state(2, dtype=np.uint64)
    k = np.asarray(keys, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = _mix(k * _GOLDEN + base[0])
        x = _mix(x ^ (np.full(k.shape, draw, dtype=np.uint64) * _GOLDEN + base[1]))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


class KeyedDraws:
    """A generator-like view of per-key streams: each call returns one draw per key.

    The i-th call draws number i of every key's stream (:func:`keyed_uniforms`), so
    plug-ins written against ``numpy.random.Generator`` (``random``, ``uniform``,
    ``standard_normal``, ``standard_exponential``) draw per client when given one,
    provided they ask for one value per client (``size`` equal to the number of keys).
    """

    def __init__(self, seed: int, component: str, keys: np.ndarray, *sub: int) -> None:
        self.seed, self.component, self.sub = seed, component, sub
        self.keys = np.asarray(keys, dtype=np.int64).ravel()
        self._draw = 0

    def _u(self, size) -> np.ndarray:
        shape = (size,) if isinstance(size, int | np.integer) else tuple(size or ())
        if shape != self.keys.shape:
            raise ValueError(f"a per-client stream gives one value per client: size "
                             f"{shape} asked of {self.keys.size} clients")
        u = keyed_uniforms(self.seed, self.component, self.keys, self._draw, *self.sub)
        self._draw += 1
        return u

    def random(self, size=None) -> np.ndarray:
        return self._u(size)

    def uniform(self, low: float = 0.0, high: float = 1.0, size=None) -> np.ndarray:
        return low + (high - low) * self._u(size)

    def integers(self, low: int, high: int | None = None, size=None) -> np.ndarray:
        if high is None:
            low, high = 0, low
        return (low + np.floor((high - low) * self._u(size))).astype(np.int64)

    def standard_normal(self, size=None) -> np.ndarray:
        from scipy.special import ndtri

        return ndtri(self._u(size))

    def standard_exponential(self, size=None) -> np.ndarray:
        return -np.log(self._u(size))
