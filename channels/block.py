"""Lazily drawn, block-constant fading: the shared machinery of the block models."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from channels.base import Channel
from channels.law import equal_probability_nodes


class BlockFading(Channel):
    """A channel whose gain is i.i.d. across coherence blocks and constant within one.

    Blocks are drawn on demand in block-major order (all links of block ``j`` before
    block ``j + 1``). numpy's Generator fills arrays sequentially, so the gain of
    block ``j`` does not depend on the order or the chunking of the queries that
    reached it (a test checks this). Subclasses' ``Params`` have a
    ``coherence_time_s`` field (the block length). Blocks before the time given to
    :meth:`forget_before` are dropped (the round loop calls it at each round start,
    less the CSI delay), so only the blocks of the current round stay in memory.
    """

    def __init__(self, params=None) -> None:
        super().__init__(params)
        self.coherence_time_s = float(self.params.coherence_time_s)

    #: blocks per stream of a keyed link (:meth:`key_blocks`)
    CHUNK = 1024

    def reset(self, n_links: int, rng: np.random.Generator) -> None:
        self.n_links = int(n_links)
        self._rng = rng
        self._blocks = np.empty((0, self.n_links))  # (n_blocks_kept, n_links)
        self._first = 0  # index of the first kept block
        self._streams = None

    def key_blocks(self, streams) -> None:
        """Draw blocks from ``streams(c)``, a generator per chunk c of :data:`CHUNK`
        blocks, instead of one stream from time 0.

        Block j is then a function of its chunk's stream alone, so a one-link channel
        rebuilt at any time (a lazily held population's client) gives block j the same
        gain at the cost of one chunk, not of every block since time 0.
        """
        self._streams = streams
        self._chunks: dict[int, np.ndarray] = {}

    def _keyed(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((self.n_links, idx.size))
        for c in np.unique(idx // self.CHUNK):
            if c not in self._chunks:
                self._chunks[int(c)] = self.draw(self._streams(int(c)), self.CHUNK,
                                                 self.n_links)
            hit = idx // self.CHUNK == c
            out[:, hit] = self._chunks[int(c)][idx[hit] - c * self.CHUNK].T
        return out

    @abstractmethod
    def draw(self, rng: np.random.Generator, n_blocks: int, n_links: int) -> np.ndarray:
        """Draw ``n_blocks`` blocks of gains, shape (n_blocks, n_links), block-major."""

    def marginal_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Equal-probability bin means of 65,536 draws of :meth:`draw` (fixed seed), cached."""
        if getattr(self, "_marginal", None) is None:
            draws = self.draw(np.random.default_rng(20_240_601), 4096, 16).ravel()
            self._marginal = tuple(a[None, :] for a in equal_probability_nodes(draws))
        return self._marginal

    def gains(self, times_s: np.ndarray) -> np.ndarray:
        idx = self.block_index(np.asarray(times_s, dtype=float))
        if idx.size and idx.min() < 0:
            raise ValueError("times_s must be non-negative")
        if getattr(self, "_streams", None) is not None:
            return self._keyed(idx)
        first = getattr(self, "_first", 0)
        if idx.size and idx.min() < first:
            raise ValueError(f"the gains before {first * self.coherence_time_s:g} s were "
                             "forgotten (forget_before)")
        need = int(idx.max()) + 1 if idx.size else 0
        kept = self._blocks.shape[0]
        if need > first + kept:
            new = max(need - first - kept, kept, 64)  # grow geometrically
            self._blocks = np.vstack([self._blocks, self.draw(self._rng, new, self.n_links)])
        return self._blocks[idx - first].T

    def forget_before(self, t_s: float) -> None:
        if getattr(self, "_streams", None) is not None:
            c = int(self.block_index(np.array([max(t_s, 0.0)]))[0]) // self.CHUNK
            self._chunks = {k: v for k, v in self._chunks.items() if k >= c}
            return
        first = getattr(self, "_first", 0)
        j = int(self.block_index(np.array([max(t_s, 0.0)]))[0])
        drop = min(j - first, self._blocks.shape[0])  # undrawn blocks are drawn later
        if drop > 0:
            self._blocks = self._blocks[drop:].copy()
            self._first = first + drop
