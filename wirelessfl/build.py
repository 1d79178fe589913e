"""Scenario -> components: resolves every plug-in name with one-line, key-named errors.

Everything a run needs is checked here before anything is written: plug-in names
and options, the device profile, the model and data set names and the presence of
their optional packages.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import ValidationError

import channels  # noqa: F401  (registers the built-in channel models)
from channels.base import CHANNELS
from wirelessfl import seeding
from wirelessfl.errors import PluginError, ScenarioError
from wirelessfl.network import tr38901  # noqa: F401  (registers the 38.901 models)
from wirelessfl.network.cell import Cell
from wirelessfl.network.compute import DEVICE_PROFILES, DeviceProfile
from wirelessfl.network.pathloss import PATHLOSS
from wirelessfl.network.placement import RandomWaypoint, place_clients
from wirelessfl.registry import Registry, UnknownNameError
from wirelessfl.scenario import Scenario, format_validation_error


def _non_finite(value: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinite float in ``value``, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        for k, v in value.items():
            found = _non_finite(v, f"{path}.{k}" if path else str(k))
            if found is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _non_finite(v, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


def resolve(registry: Registry, key: str, name: str, options: dict[str, Any],
            options_key: str) -> Any:
    """Instantiate the plug-in ``name`` of ``registry`` with validated ``options``.

    Raises
    ------
    PluginError
        Naming ``key`` for an unknown name, or ``options_key.<field>`` for a bad option.
    """
    try:
        cls = registry.get(name)
    except UnknownNameError as err:
        detail = f" ({err.detail})" if err.detail else ""
        raise PluginError(key, f"unknown {registry.kind} {name!r}{detail}; available: "
                               f"{', '.join(err.available)}") from None
    bad = _non_finite(options)
    if bad is not None:
        raise PluginError(f"{options_key}.{bad}" if bad else options_key,
                          "must be a finite number (no .inf or .nan)")
    try:
        # strict: a boolean is not a number and a string is not a number here
        params = cls.Params.model_validate(options, strict=True)
    except ValidationError as err:
        k, msg = format_validation_error(err, prefix=options_key)
        if err.errors()[0]["type"] == "extra_forbidden":
            msg += f"; {cls.name or name} accepts: {', '.join(cls.Params.model_fields) or 'none'}"
        raise PluginError(k, msg) from None
    try:
        return cls(params)
    except ValueError as err:  # a plug-in that checks its inputs (files, ranges) itself
        raise PluginError(options_key, str(err)) from None


def device_names(sc: Scenario) -> list[str]:
    """The compute profile name of every client (a list is cycled over the clients)."""
    names = [sc.clients.device] if isinstance(sc.clients.device, str) else sc.clients.device
    if not names:
        raise ScenarioError("clients.device", "the list of profiles is empty")
    return [names[k % len(names)] for k in range(sc.clients.count)]


def device_profiles(sc: Scenario) -> list[DeviceProfile]:
    """The compute profile of every client."""
    out = []
    for name in device_names(sc):
        if name not in DEVICE_PROFILES:
            raise ScenarioError("clients.device", f"unknown profile {name!r}; "
                                f"available: {', '.join(DEVICE_PROFILES)}")
        out.append(DEVICE_PROFILES[name])
    return out


def client_ranks(sc: Scenario) -> list[int]:
    """The LoRA rank of every client: client_ranks, rank_by_device, or rank for all."""
    lora = sc.model.lora
    if lora.client_ranks is not None:
        return list(lora.client_ranks)
    if lora.rank_by_device is not None:
        names = device_names(sc)
        missing = sorted({n for n in names if n not in lora.rank_by_device})
        if missing:
            raise ScenarioError("model.lora.rank_by_device",
                                f"no rank for profile {missing[0]!r} used by clients.device")
        return [lora.rank_by_device[n] for n in names]
    return [lora.rank] * sc.clients.count


def build_cell(sc: Scenario) -> Cell:
    """Place the clients, draw their shadowing and reset their fading channel."""
    fading = resolve(CHANNELS, "channel.fading.model", sc.channel.fading.model,
                     sc.channel.fading.params, "channel.fading")
    pathloss = resolve(PATHLOSS, "channel.pathloss.model", sc.channel.pathloss.model,
                       sc.channel.pathloss.params, "channel.pathloss")
    pl = sc.clients.placement
    k = sc.clients.count
    pos = place_clients(k, pl.model, seeding.rng(sc.seed, "placement"), pl.radius_m,
                        pl.min_distance_m, pl.distances_m)
    pathloss.draw(np.linalg.norm(pos, axis=1), seeding.rng(sc.seed, "shadowing"))
    try:
        fading.reset(k, seeding.rng(sc.seed, "channel"))
    except ValueError as err:  # e.g. a trace with fewer links than clients
        raise PluginError("channel.fading", str(err)) from None
    mob = sc.clients.mobility
    mobility = None
    if mob.model == "random_waypoint":
        radius = pl.radius_m if pl.model != "explicit" else float(max(pl.distances_m))
        r_min = min(pl.min_distance_m, 0.5 * radius)
        mobility = RandomWaypoint(pos, mob.speed_mps, mob.pause_s, radius, r_min,
                                  seeding.rng(sc.seed, "mobility"))
    r = sc.radio
    csi = sc.channel.csi
    return Cell(pos, pathloss, fading, r.tx_power_dbm, r.bs_tx_power_dbm, r.noise_psd_dbm_hz,
                r.noise_figure_db, r.uplink_bandwidth_hz, r.downlink_bandwidth_hz, mobility,
                csi.error_std_db, csi.delay_s, csi.kind,
                seeding.rng(sc.seed, "csi"))


def build_methods(sc: Scenario) -> tuple[Any, Any, Any]:
    """The aggregator, compressor and controller named in ``method``."""
    from wirelessfl.compression import COMPRESSORS
    from wirelessfl.control import CONTROLLERS
    from wirelessfl.learning.aggregators import AGGREGATORS

    m = sc.method
    controller = resolve(CONTROLLERS, "method.controller", m.controller, m.controller_options,
                         "method.controller_options")
    if controller.needs_budget and sc.controller.latency_budget_s is None:
        raise ScenarioError("controller.latency_budget_s",
                            f"controller {m.controller!r} needs a long-term latency budget in "
                            "seconds")
    return (
        resolve(AGGREGATORS, "method.aggregator", m.aggregator, m.aggregator_options,
                "method.aggregator_options"),
        resolve(COMPRESSORS, "method.compressor", m.compressor, m.compressor_options,
                "method.compressor_options"),
        controller,
    )


def build_selector(sc: Scenario) -> Any:
    """The client selector named in ``clients.selection``."""
    from wirelessfl.selection import SELECTORS

    selector = resolve(SELECTORS, "clients.selection", sc.clients.selection,
                       sc.clients.selection_options, "clients.selection_options")
    if not selector.uses_fraction and sc.clients.fraction < 1:
        raise ScenarioError("clients.selection", f"{sc.clients.selection!r} selects every "
                            f"client; clients.fraction must be 1 (it is {sc.clients.fraction})")
    return selector


def check_learning(sc: Scenario) -> None:
    """Model and data set plug-ins and their options (files, optional packages)."""
    from wirelessfl.learning.data import DATASETS
    from wirelessfl.learning.models import MODELS

    resolve(MODELS, "model.name", sc.model.name, sc.model.options, "model.options")
    try:
        data_cls = DATASETS.get(sc.data.name)
    except UnknownNameError:
        data_cls = None
    options = data_cls.options(sc.data) if data_cls is not None else {}
    resolve(DATASETS, "data.name", sc.data.name, options, "data.options")


def check(sc: Scenario) -> None:
    """Every build-time check, without training anything."""
    device_profiles(sc)
    client_ranks(sc)
    build_cell(sc)
    build_methods(sc)
    build_selector(sc)
    check_learning(sc)


def expected_round_latency_s(cell: Cell, compute_s, bits, downlink_s: float,
                             n_rounds: int = 200, seed: int = 0,
                             bandwidth_hz: np.ndarray | None = None) -> float:
    """Mean round latency of uploads of ``bits``, by simulation.

    ``compute_s`` and ``bits`` are scalars or one value per client; the bandwidth is
    equal shares unless ``bandwidth_hz`` (one per client) is given.

    Plays ``n_rounds`` independent rounds of the discrete-event timeline on a fresh
    realisation of the scenario's channel model (not the run's own draws) and
    averages their latency, seconds. The timeline, not a closed form, is used
    because an upload spans several coherence blocks: the mean of ``S / R`` over
    a single Rayleigh fade is unbounded, the time to push S bits through an
    evolving channel is not.
    """
    from wirelessfl.sim import RoundPlan, play_round

    ch = type(cell.channel)(cell.channel.params)
    k = len(cell.distance_m)
    ch.reset(k, np.random.default_rng(seed))
    links = np.arange(k)
    c = cell.uplink_c_hz(links)
    b = np.full(k, cell.uplink_bandwidth_hz / k) if bandwidth_hz is None else bandwidth_hz
    tc = ch.coherence_time_s if np.isfinite(ch.coherence_time_s) else 0.0
    t0, total = 0.0, 0.0
    for _ in range(n_rounds):
        plan = RoundPlan(t0, links, downlink_s, np.broadcast_to(compute_s, (k,)),
                         np.broadcast_to(np.asarray(bits, dtype=float), (k,)), b, c)
        out = play_round(plan, ch)
        total += out.end_s - t0
        t0 = out.end_s + tc  # next round starts in a fresh block
    return total / n_rounds
