"""Channel-model plug-in protocol and the name registry.

This module is the public API for channel plug-in authors. A channel model is a
class that

* subclasses :class:`Channel`,
* declares its YAML parameters as a pydantic model in the class attribute ``Params``
  (``extra="forbid"``, units in the field names),
* is registered by name with ``@register_channel("name")``,
* implements ``reset(n_links, rng)`` and ``gains(times_s)``.

Planners ask a channel for its *window law* (:meth:`Channel.window_law`): the law of
the gain over an upload window given the gain measured at the round start. The
defaults (a Monte Carlo of the model's own stationary law, and i.i.d. blocks) make a
new block model plan correctly with no extra code; correlated models override it.

External packages can add models without touching this repository through the
entry-point group ``wirelessfl.channels`` (``name = "package.module:Class"``), and a
scenario can name any importable class directly as ``"package.module:Class"``.

Only numpy, pydantic and the dependency-free :mod:`wirelessfl.registry` are used here:
nothing in ``channels/`` knows about torch or about federated learning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from channels.law import WindowLaw, equal_probability_nodes
from wirelessfl.registry import NoParams, Registry, UnknownNameError

__all__ = ["CHANNELS", "Channel", "NoParams", "Registry", "UnknownNameError",
           "register_channel"]

class Channel(ABC):
    """Small-scale fading of ``n_links`` independent links, as a function of time.

    Subclasses set ``Params`` (a pydantic model of their YAML parameters) and
    implement :meth:`reset` and :meth:`gains`. The large-scale gain (path loss,
    shadowing) is applied outside, so ``gains`` has unit mean power for every model
    unless the model's documentation says otherwise.

    Parameters
    ----------
    params : Params
        Validated parameters.

    Attributes
    ----------
    name : str
        Registry name, set by :func:`register_channel`.
    coherence_time_s : float
        Time over which the gain is (approximately) constant, in seconds. Block
        models are exactly constant within a block; ``inf`` means time-invariant.
    correlated : bool
        A continuous-time model whose gain stays correlated over many hold intervals
        (Jakes, TDL, CDL); block models with i.i.d. blocks are not.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    coherence_time_s: float = float("inf")
    subbands: int = 1
    #: the gain evolves continuously and stays correlated over several hold intervals, so
    #: an upload may span few independent fades: ``channel.csi.planning: auto`` then
    #: plans it by its expected finish over :meth:`sample_paths`
    correlated: ClassVar[bool] = False
    #: each link is independent and ``reset(1, rng)`` draws one alone (False for a
    #: model whose links are fixed columns of a file, as ``trace``)
    per_link: ClassVar[bool] = True

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()
        self.n_links = 0

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> Channel:
        """Validate ``params`` with ``cls.Params`` and build the model."""
        return cls(cls.Params.model_validate(params))

    @abstractmethod
    def reset(self, n_links: int, rng: np.random.Generator) -> None:
        """Start a new realisation for ``n_links`` links drawing from ``rng`` only."""

    @abstractmethod
    def gains(self, times_s: np.ndarray) -> np.ndarray:
        """Power gains ``|h|^2`` at the given times.

        Parameters
        ----------
        times_s : ndarray, shape (n_times,)
            Non-negative times in seconds, in any order. Asking twice for the same
            time returns the same gain.

        Returns
        -------
        ndarray, shape (n_links, n_times)
            Linear power gains (dimensionless).
        """

    def subband_gains(self, times_s: np.ndarray) -> np.ndarray:
        """Power gains of the band's ``subbands`` equal-weight sub-bands.

        A client given bandwidth ``b`` spread over the band transmits at
        ``mean_q b log2(1 + c g_q / b)``: the timeline, the planners and the
        controllers all use that rate. Flat models have one sub-band, the band gain.

        Returns
        -------
        ndarray, shape (n_links, n_times, Q)
            Linear power gains; their mean over Q is :meth:`gains`.
        """
        return np.asarray(self.gains(times_s), dtype=float)[..., None]

    @property
    def hold_interval_s(self) -> float:
        """Interval over which the simulator may hold the gain constant, seconds.

        Exact for block models (their coherence block); continuous-time models return
        a resolution step, and the uplink integrates the rate at its midpoints.
        """
        return self.coherence_time_s

    @property
    def path_interval_s(self) -> float:
        """Cell of the planner's sample paths (:meth:`sample_paths`), seconds: the hold
        interval unless a model's paths are costly enough to plan on a coarser grid."""
        return self.hold_interval_s

    # ------------------------------------------------------------------ the planner's law

    def marginal_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature of the stationary law of the gain: ``(gains, probs)``, shape (L, Q).

        L is 1 when every link has the same law, else ``n_links``. The default is a
        Monte Carlo of the model itself (a fresh copy with a fixed seed, sampled far
        apart in time, 16 equal-probability bins), cached; models with a closed form
        override it. Planning with it gives the ergodic rate ``E[b log2(1 + c g / b)]``.
        """
        if getattr(self, "_marginal", None) is None:
            probe = type(self)(self.params)
            probe.reset(256, np.random.default_rng(20_240_601))
            step = 3 * self.coherence_time_s if np.isfinite(self.coherence_time_s) else 1.0
            times = np.arange(64) * step
            # a sub-band chosen at random: the law of each sub-band's rate term
            samples = (probe.gains(times) if self.subbands == 1
                       else probe.subband_gains(times)).ravel()
            self._marginal = tuple(a[None, :] for a in equal_probability_nodes(samples))
        return self._marginal

    def window_law(self, gain: np.ndarray, known_at_s: float, from_s: float) -> WindowLaw:
        """The law of each link's gain from ``from_s`` on, given ``gain`` seen at ``known_at_s``.

        The default suits block models whose blocks are i.i.d.: the known gain holds
        until the end of its coherence block, then the stationary law
        (:meth:`marginal_nodes`). A gain seen in an earlier block than ``from_s`` says
        nothing; a time-invariant channel (infinite coherence time) keeps it for ever.
        Correlated models override this with their conditional law.

        Parameters
        ----------
        gain : ndarray, shape (n_links,) or (n_links, Q)
            The measured power gains (per sub-band for a model with ``subbands > 1``).
        known_at_s, from_s : float
            When the gain was measured, and the start of the window (``>= known_at_s``).
        """
        g = np.asarray(gain, dtype=float)
        if g.ndim == 2 and g.shape[1] == 1:
            g = g[:, 0]
        if not np.isfinite(self.coherence_time_s):
            return WindowLaw.known(g)
        block = int(self.block_index(np.array([known_at_s]))[0])
        end = (block + 1) * self.coherence_time_s
        gains, probs = self.marginal_nodes()
        if end <= from_s:
            return WindowLaw.stationary(len(g), gains, probs, from_s)
        return WindowLaw.block(g, np.full(len(g), end), gains, probs)

    def sample_paths(self, links: np.ndarray, gain: np.ndarray | None, known_at_s: float,
                     times_s: np.ndarray, n_paths: int, rng: np.random.Generator
                     ) -> np.ndarray:
        """Sample paths of the band gain of ``links`` given ``gain`` measured at
        ``known_at_s`` (None: nothing known, the stationary law).

        The default suits i.i.d. block models: the measured gain while its block lasts,
        then an independent draw of the stationary law (:meth:`marginal_nodes`, an
        equal-probability quadrature) per block and path; a time-invariant channel
        keeps the measured gain. Correlated models override it with their conditional
        law.

        Parameters
        ----------
        links : ndarray of int, shape (n,)
        gain : ndarray, shape (n,), or None
        times_s : ndarray, shape (T,)
            Absolute times, seconds.

        Returns
        -------
        ndarray, shape (n, n_paths, T)
        """
        if self.subbands > 1:
            raise NotImplementedError(f"{type(self).__name__} has sub-bands: its sample "
                                      "paths must be per sub-band (see channels.wideband)")
        links = np.asarray(links)
        n, t = len(links), np.asarray(times_s, dtype=float)
        if not np.isfinite(self.coherence_time_s):
            g = np.ones(n) if gain is None else np.asarray(gain, dtype=float)
            return np.broadcast_to(g[:, None, None], (n, n_paths, t.size)).copy()
        nodes, probs = self.marginal_nodes()
        nodes = np.broadcast_to(nodes, (self.n_links, nodes.shape[-1]))[links]
        blocks = self.block_index(t)
        uniq, inv = np.unique(blocks, return_inverse=True)
        cum = np.cumsum(np.broadcast_to(probs, (self.n_links, probs.shape[-1]))[links], axis=1)
        u = rng.random((n, n_paths, uniq.size))
        pick = np.minimum((u[..., None] > cum[:, None, None, :]).sum(axis=-1), nodes.shape[1] - 1)
        out = np.take_along_axis(nodes[:, None, :], pick.reshape(n, 1, -1), axis=2)
        out = out.reshape(n, n_paths, uniq.size)[:, :, inv]
        if gain is not None:
            known = blocks == self.block_index(np.array([known_at_s]))[0]
            out[:, :, known] = np.asarray(gain, dtype=float)[:, None, None]
        return out

    def stationary_law(self, n_links: int, from_s: float) -> WindowLaw:
        """The law without CSI (statistical planning): the stationary law throughout."""
        gains, probs = self.marginal_nodes()
        return WindowLaw.stationary(n_links, gains, probs, from_s)

    def forget_before(self, t_s: float) -> None:
        """Nothing before ``t_s`` will be asked again: a model that stores its past
        (drawn blocks) may drop it, so memory and checkpoints stay bounded over a
        long run. The default keeps everything."""
        return None

    def block_index(self, times_s: np.ndarray) -> np.ndarray:
        """Index of the coherence block each time falls in, shape (n_times,)."""
        if not np.isfinite(self.coherence_time_s):
            return np.zeros(np.shape(times_s), dtype=np.int64)
        return np.floor(np.asarray(times_s) / self.coherence_time_s).astype(np.int64)


CHANNELS: Registry[Channel] = Registry("channel", Channel)
register_channel = CHANNELS.register
