"""A population of clients held lazily: state drawn per client, only when a round needs it.

With ``clients.population: lazy`` (``auto`` above 100,000 clients) no per-client array
exists at set-up. Each client's placement, shadowing (and LOS state), mobility and
fading channel come from its own streams, keyed by its index
(:func:`wirelessfl.seeding.keyed_uniforms` for the large-scale draws, a
``numpy.random.Generator`` seeded by ``(seed, component, k)`` for its channel and
its walk), so a client's numbers do not depend on who else exists or is selected
with it. A round builds an ordinary :class:`~wirelessfl.network.cell.Cell` over its
selected clients (:meth:`LazyCell.cell_for`) and plays on it; nothing of it is kept
after the round but the population's parameters.

A client's fading channel is rebuilt each time it is selected, from its own streams:
a block model draws block j from the stream of j's chunk of 1,024 blocks (so the cost
does not grow with simulated time), continuous models (Jakes, TDL, CDL) redraw their
sinusoids, which fix the whole process. Memory is therefore bounded by the clients of
one round, whatever the population.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from channels.base import Channel
from channels.block import BlockFading
from channels.law import WindowLaw
from wirelessfl import seeding
from wirelessfl.errors import PluginError
from wirelessfl.network.cell import Cell
from wirelessfl.network.pathloss import PathLoss
from wirelessfl.network.placement import RandomWaypoint, place_clients
from wirelessfl.network.units import dbm_to_w
from wirelessfl.selection import SelectionView, select


class LinkSet(Channel):
    """Independent one-link channels presented as one channel of ``len(channels)`` links.

    Every call is answered link by link and stacked, so link i's gains are those of
    ``channels[i]`` alone. The model's constants (coherence time, sub-bands, laws) are
    the first channel's: all are the same model.
    """

    def __init__(self, channels: list[Channel]) -> None:
        proto = channels[0]
        self.params = proto.params
        self.channels = channels
        self.n_links = len(channels)
        self.proto = proto
        self.coherence_time_s = proto.coherence_time_s
        self.subbands = proto.subbands
        self.correlated = proto.correlated
        self.name = proto.name

    def reset(self, n_links: int, rng: np.random.Generator) -> None:
        raise NotImplementedError("a LinkSet is made of channels already drawn")

    def gains(self, times_s: np.ndarray) -> np.ndarray:
        return np.concatenate([c.gains(times_s) for c in self.channels], axis=0)

    def subband_gains(self, times_s: np.ndarray) -> np.ndarray:
        return np.concatenate([c.subband_gains(times_s) for c in self.channels], axis=0)

    @property
    def hold_interval_s(self) -> float:
        return self.proto.hold_interval_s

    @property
    def path_interval_s(self) -> float:
        return self.proto.path_interval_s

    def marginal_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.proto.marginal_nodes()

    def window_law(self, gain: np.ndarray, known_at_s: float, from_s: float) -> WindowLaw:
        g = np.asarray(gain, dtype=float)
        laws = [c.window_law(g[i : i + 1], known_at_s, from_s)
                for i, c in enumerate(self.channels)]
        return WindowLaw(*(np.concatenate([getattr(w, f) for w in laws], axis=0)
                           for f in ("gains", "probs", "start_s", "end_s")))

    def sample_paths(self, links: np.ndarray, gain: np.ndarray | None, known_at_s: float,
                     times_s: np.ndarray, n_paths: int, rng: np.random.Generator
                     ) -> np.ndarray:
        links = np.asarray(links)
        g = None if gain is None else np.asarray(gain, dtype=float)
        return np.concatenate([
            self.channels[int(k)].sample_paths(np.arange(1), None if g is None else g[i : i + 1],
                                               known_at_s, times_s, n_paths, rng)
            for i, k in enumerate(links)], axis=0)

    def stationary_law(self, n_links: int, from_s: float) -> WindowLaw:
        return self.proto.stationary_law(n_links, from_s)

    def forget_before(self, t_s: float) -> None:
        for c in self.channels:
            c.forget_before(t_s)

    def block_index(self, times_s: np.ndarray) -> np.ndarray:
        return self.proto.block_index(times_s)


@dataclass
class LazyCell:
    """K clients around one base station, drawn per client on demand.

    Holds the population's parameters and prototypes only; :meth:`cell_for` draws the
    state of given clients at a time into an ordinary :class:`Cell`.
    """

    seed: int
    count: int
    placement: Any  # the scenario's clients.placement section
    mobility: Any  # the scenario's clients.mobility section
    pathloss: PathLoss
    channel: Channel  # a prototype: the model and its parameters
    link_budget: dict[str, float]  # Cell's radio and CSI fields
    csi_kind: str = "auto"
    now_s: float = 0.0

    lazy = True

    def __post_init__(self) -> None:
        self.csi_delay_s = float(self.link_budget["csi_delay_s"])
        self.uplink_bandwidth_hz = float(self.link_budget["uplink_bandwidth_hz"])
        self.tx_power_w = float(dbm_to_w(self.link_budget["tx_power_dbm"]))
        self.channel.reset(1, np.random.default_rng(0))  # the prototype answers laws

    @property
    def tx_power_dbm(self) -> float:
        return float(self.link_budget["tx_power_dbm"])

    def move_to(self, t_s: float) -> None:
        """Mobile clients are placed when drawn (:meth:`cell_for`), at this time."""
        self.now_s = t_s

    def forget_before(self, t_s: float) -> None:
        """Nothing is kept between rounds."""

    # ------------------------------------------------------------ per-client draws
    def start_positions_m(self, links: np.ndarray) -> np.ndarray:
        """Positions of ``links`` at time 0 (their own streams), metres, shape (n, 2)."""
        pl = self.placement
        links = np.asarray(links, dtype=np.int64)
        dist = None if pl.distances_m is None else [pl.distances_m[int(k)] for k in links]
        return place_clients(len(links), pl.model,
                             seeding.KeyedDraws(self.seed, "placement", links),  # type: ignore[arg-type]
                             pl.radius_m, pl.min_distance_m, dist)

    def positions_m(self, links: np.ndarray, t_s: float,
                    start: np.ndarray | None = None) -> np.ndarray:
        """Positions of ``links`` at ``t_s``: each walks its own random waypoints from its
        start (:meth:`start_positions_m`, or ``start`` when already drawn)."""
        start = self.start_positions_m(links) if start is None else start
        mob = self.mobility
        if mob.model != "random_waypoint":
            return start
        pl = self.placement
        radius = pl.radius_m if pl.model != "explicit" else float(max(pl.distances_m))
        r_min = min(pl.min_distance_m, 0.5 * radius)
        out = np.empty_like(start)
        for i, k in enumerate(np.asarray(links)):
            walk = RandomWaypoint(start[i : i + 1], mob.speed_mps, mob.pause_s, radius, r_min,
                                  seeding.rng(self.seed, "mobility", int(k)))
            out[i] = walk.positions(t_s)[0]
        return out

    def pathloss_for(self, links: np.ndarray, start_m: np.ndarray) -> PathLoss:
        """A path-loss model with the shadowing (and LOS state) of ``links``, drawn at
        their start distances."""
        pl = type(self.pathloss)(self.pathloss.params)
        pl.draw(np.linalg.norm(start_m, axis=1),
                seeding.KeyedDraws(self.seed, "shadowing", links))  # type: ignore[arg-type]
        return pl

    def channel_for(self, links: np.ndarray, t_s: float) -> LinkSet:
        """The fading channels of ``links``, each from its own streams (a block model's
        blocks from one stream per chunk of blocks: :meth:`BlockFading.key_blocks`), at
        ``t_s`` (unused: a client's channel is a function of time alone)."""
        proto, out = self.channel, []
        marginal = proto.marginal_nodes()  # the model's law, computed once (and cached)
        for k in np.asarray(links):
            ch = type(proto)(proto.params)
            ch._marginal = marginal  # where a model caches its law: not computed again
            ch.reset(1, seeding.rng(self.seed, "channel", int(k)))
            if isinstance(ch, BlockFading):  # block j from a stream of its chunk of blocks
                ch.key_blocks(lambda c, k=int(k): seeding.rng(self.seed, "channel", k, c))
            out.append(ch)
        return LinkSet(out)

    def cell_for(self, links: np.ndarray, t_s: float, round_: int = -1) -> Cell:
        """An ordinary cell over ``links`` (client indices) at time ``t_s``: link i of it
        is client ``links[i]``. Its CSI errors are drawn per client and round."""
        links = np.asarray(links, dtype=np.int64)
        start = self.start_positions_m(links)
        pos = self.positions_m(links, t_s, start)
        b = self.link_budget
        cell = Cell(pos, self.pathloss_for(links, start), self.channel_for(links, t_s),
                    b["tx_power_dbm"], b["bs_tx_power_dbm"], b["noise_psd_dbm_hz"],
                    b["noise_figure_db"], b["uplink_bandwidth_hz"], b["downlink_bandwidth_hz"],
                    None, b["csi_error_std_db"], b["csi_delay_s"], self.csi_kind,
                    seeding.KeyedDraws(self.seed, "csi", links, round_ + 1))  # type: ignore[arg-type]
        return cell

    def sample(self, n: int, seed: int) -> tuple[Cell, np.ndarray]:
        """A fixed random sample of ``n`` clients (a round's worth, from the seed's own
        stream) and the cell over them at time 0: what population-wide estimates are
        computed over, since the whole population is never drawn."""
        ids = np.sort(seeding.rng(seed, "sampling", 1).choice(self.count, min(n, self.count),
                                                              replace=False))
        return self.cell_for(ids, 0.0), ids

    def gain_db_of(self, links: np.ndarray, t_s: float | None = None) -> np.ndarray:
        """Large-scale gains of ``links`` at ``t_s`` (default: the last move), dB."""
        t = self.now_s if t_s is None else t_s
        links = np.asarray(links, dtype=np.int64)
        start = self.start_positions_m(links)
        pos = self.positions_m(links, t, start)
        return self.pathloss_for(links, start).gain_db(np.linalg.norm(pos, axis=1))


class PopulationView:
    """What a selector sees of a lazy population: the count, the round and ``n``; the
    large-scale gains computed on demand; no CSI of every client (it is not drawn)."""

    def __init__(self, round_: int, count: int, n: int, cell: LazyCell) -> None:
        self.round, self.count, self.n = round_, count, n
        self._cell = cell

    @property
    def gain_db(self) -> np.ndarray:
        return self._cell.gain_db_of(np.arange(self.count))

    @property
    def estimated_fading(self) -> np.ndarray:
        raise PluginError("clients.selection", "this selector reads every client's CSI, "
                          "which a lazy population (clients.population) does not draw; use "
                          "random or round_robin, or clients.population: eager")


@dataclass
class RoundLinks:
    """The selected clients of a round and the cell they are played on.

    Attributes
    ----------
    clients : ndarray of int, shape (n,)
        The selected client indices, sorted.
    cell : Cell
        The cell of the round's links: the run's own (eager) or one drawn over the
        selected clients (lazy).
    links : ndarray of int, shape (n,)
        The selected clients' links in ``cell``.
    csi : ndarray, shape (n, Q)
        The base station's CSI of the selected clients at the round start.
    distance_m, gain_db : ndarray, shape (n,)
        Their distances and large-scale gains at the round start.
    """

    clients: np.ndarray
    cell: Cell
    links: np.ndarray
    csi: np.ndarray
    distance_m: np.ndarray
    gain_db: np.ndarray


def open_round(cell: Cell | LazyCell, round_: int, t_s: float, n: int, selector: Any,
               sampling: np.random.Generator) -> RoundLinks:
    """Select the round's clients and draw what the round needs of them.

    Eager: the CSI of every client at ``t_s`` (one draw of the CSI stream for all, as
    the selector may read it), then the selection. Lazy: the selection on what the
    population view offers, then the selected clients' cell and CSI.
    """
    if isinstance(cell, LazyCell):
        sel = select(selector, PopulationView(round_, cell.count, n, cell), sampling)
        rc = cell.cell_for(sel, t_s, round_)
        return RoundLinks(sel, rc, np.arange(len(sel)), rc.estimated_csi(t_s),
                          rc.distance_m, np.asarray(rc.gain_db, dtype=float))
    csi_all = cell.estimated_csi(t_s)  # once a round: the CSI stream is shared
    view = SelectionView(round_, cell.count, n, np.asarray(cell.gain_db, dtype=float),
                         csi_all.mean(axis=1))
    sel = select(selector, view, sampling)
    return RoundLinks(sel, cell, sel, csi_all[sel], cell.distance_m[sel],
                      np.asarray(cell.gain_db, dtype=float)[sel])
