"""Scenario -> components: resolves every plug-in name with one-line, key-named errors.

Everything a run needs is checked here before anything is written: plug-in names
and options, the device profile, the model and data set names and the presence of
their optional packages. :func:`build_run` then builds the run's
:class:`Components` (after the controller's offline stage): the cell, the methods,
the selector, the learning workbench and the round sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

import channels  # noqa: F401  (registers the built-in channel models)
from channels.base import CHANNELS, Channel
from wirelessfl import seeding
from wirelessfl.control import Preparation
from wirelessfl.errors import PluginError, ScenarioError
from wirelessfl.loggers import LOGGERS, Logger
from wirelessfl.network import tr38901  # noqa: F401  (registers the 38.901 models)
from wirelessfl.network.cell import Cell
from wirelessfl.network.compute import DEVICE_PROFILES, DeviceProfile
from wirelessfl.network.pathloss import PATHLOSS
from wirelessfl.network.placement import RandomWaypoint, place_clients
from wirelessfl.network.population import LazyCell
from wirelessfl.registry import Registry, UnknownNameError
from wirelessfl.scenario import Scenario, format_validation_error
from wirelessfl.selection import n_selected
from wirelessfl.sizes import Plan, RoundSizes


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
            options_key: str, defaults: dict[str, Any] | None = None) -> Any:
    """Instantiate the plug-in ``name`` of ``registry`` with validated ``options``.

    ``defaults`` fill the options the plug-in's ``Params`` declares and the scenario
    leaves unset (the scenario's uplink bandwidth for a wideband channel, say).

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
    fields = getattr(cls.Params, "model_fields", {})
    given = {k: v for k, v in (defaults or {}).items() if k in fields}
    options = {**given, **{k: v for k, v in options.items() if v is not None or k not in given}}
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


def build_cell(sc: Scenario) -> Cell | LazyCell:
    """Place the clients, draw their shadowing and reset their fading channel."""
    fading = resolve(CHANNELS, "channel.fading.model", sc.channel.fading.model,
                     sc.channel.fading.params, "channel.fading",
                     {"bandwidth_hz": sc.radio.uplink_bandwidth_hz})
    pathloss = resolve(PATHLOSS, "channel.pathloss.model", sc.channel.pathloss.model,
                       sc.channel.pathloss.params, "channel.pathloss")
    pl = sc.clients.placement
    k = sc.clients.count
    if sc.channel.csi.planning == "expected_finish" and not has_paths(fading):
        raise PluginError("channel.csi.planning", f"{sc.channel.fading.model!r} has sub-bands "
                          "but no sample_paths of them; plan it with mean_rate (or subbands: 1)")
    r = sc.radio
    csi = sc.channel.csi
    if sc.lazy_population:
        if not fading.per_link:
            raise PluginError("channel.fading.model", f"{sc.channel.fading.model!r} cannot "
                              "draw one client's channel alone; a lazy population "
                              "(clients.population) needs a model that can (not a trace)")
        budget = {"tx_power_dbm": r.tx_power_dbm, "bs_tx_power_dbm": r.bs_tx_power_dbm,
                  "noise_psd_dbm_hz": r.noise_psd_dbm_hz, "noise_figure_db": r.noise_figure_db,
                  "uplink_bandwidth_hz": r.uplink_bandwidth_hz,
                  "downlink_bandwidth_hz": r.downlink_bandwidth_hz,
                  "csi_error_std_db": csi.error_std_db, "csi_delay_s": csi.delay_s}
        return LazyCell(sc.seed, k, pl, sc.clients.mobility, pathloss, fading, budget,
                        csi.kind)
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
    return Cell(pos, pathloss, fading, r.tx_power_dbm, r.bs_tx_power_dbm, r.noise_psd_dbm_hz,
                r.noise_figure_db, r.uplink_bandwidth_hz, r.downlink_bandwidth_hz, mobility,
                csi.error_std_db, csi.delay_s, csi.kind,
                seeding.rng(sc.seed, "csi"))


def has_paths(channel: Channel) -> bool:
    """Whether ``channel`` can give the planner sample paths (a model with sub-bands must
    draw them per sub-band itself)."""
    return channel.subbands == 1 or type(channel).sample_paths is not Channel.sample_paths


def plans_by_paths(planning: str, channel: Channel) -> bool:
    """Whether the round plans each upload by its expected finish over sample paths:
    ``expected_finish``, or ``auto`` on a time-correlated model (``Channel.correlated``)
    that has them."""
    if planning == "auto":
        return bool(channel.correlated) and has_paths(channel)
    return planning == "expected_finish"


def build_controller(sc: Scenario) -> Any:
    """The controller named in ``method.controller``, with its latency budget checked."""
    from wirelessfl.control import CONTROLLERS

    m = sc.method
    controller = resolve(CONTROLLERS, "method.controller", m.controller, m.controller_options,
                         "method.controller_options")
    if controller.needs_budget and sc.controller.latency_budget_s is None:
        raise ScenarioError("controller.latency_budget_s",
                            f"controller {m.controller!r} needs a long-term latency budget in "
                            "seconds")
    return controller


def build_methods(sc: Scenario) -> tuple[Any, Any, Any]:
    """The aggregator, compressor and controller named in ``method``."""
    from wirelessfl.compression import COMPRESSORS, Compressor
    from wirelessfl.learning.aggregators import AGGREGATORS

    m = sc.method
    controller = build_controller(sc)
    compressor = resolve(COMPRESSORS, "method.compressor", m.compressor,
                         m.compressor_options, "method.compressor_options")
    if compressor.sparsifies and type(compressor).error_profile is Compressor.error_profile:
        raise PluginError("method.compressor", f"{m.compressor!r} sparsifies but reports no "
                          "error_profile: a sparsifying compressor must say what each number "
                          "of kept ranks costs (Compressor.error_profile)")
    aggregator = resolve(AGGREGATORS, "method.aggregator", m.aggregator, m.aggregator_options,
                         "method.aggregator_options")
    if aggregator.personalized and sc.lazy_population:
        raise PluginError("method.aggregator", f"{m.aggregator!r} keeps and evaluates a "
                          "personal adapter for every client, which a lazy population "
                          "(clients.population) does not hold; use a global aggregator")
    return aggregator, compressor, controller


def build_selector(sc: Scenario) -> Any:
    """The client selector named in ``clients.selection``."""
    from wirelessfl.selection import SELECTORS

    selector = resolve(SELECTORS, "clients.selection", sc.clients.selection,
                       sc.clients.selection_options, "clients.selection_options")
    if selector.reads_csi and sc.lazy_population:
        raise PluginError("clients.selection", f"{sc.clients.selection!r} reads every "
                          "client's CSI each round, which a lazy population "
                          "(clients.population) does not draw; use random or round_robin")
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
    sc = resolve_model(sc)
    device_profiles(sc)
    client_ranks(sc)
    build_cell(sc)
    aggregator, compressor, _ = build_methods(sc)
    check_adapter(sc, aggregator, compressor)
    build_selector(sc)
    check_learning(sc)



def resolve_model(sc: Scenario) -> Scenario:
    """``sc`` with ``model.task`` and ``model.lora.target_modules`` made explicit: the
    model's own task and the architecture's usual LoRA targets, unless given.

    Raises
    ------
    ScenarioError
        A causal-LM task for a model that is not one (naming ``model.task``), or no
        known targets (naming ``model.lora.target_modules``).
    """
    from wirelessfl.learning.models import MODELS, resolve_targets

    source = resolve(MODELS, "model.name", sc.model.name, sc.model.options, "model.options")
    task = source.task() if sc.model.task == "auto" else sc.model.task
    if task == "causal_lm" and source.task() != "causal_lm":
        raise ScenarioError("model.task", f"{sc.model.name!r} is not a causal language model "
                            "(an encoder); use classification, or a causal model such as "
                            "tiny-llama, smollm2-135m or an hf causal-LM folder")
    targets = sc.model.lora.target_modules
    if sc.model.adapter == "lora":
        try:
            targets = resolve_targets(source, targets)
        except ValueError as err:
            raise ScenarioError("model.lora.target_modules", str(err)) from None
    if task == sc.model.task and targets == sc.model.lora.target_modules:
        return sc
    out = sc.model_copy(deep=True)
    out.model.task = task
    out.model.lora.target_modules = targets
    return out


def model_tokenizer(sc: Scenario) -> Any:
    """The model's tokenizer (``sc`` resolved); a causal LM's pads with its EOS token when
    it has no pad token.

    Raises
    ------
    PluginError
        A model without a tokenizer (naming ``model.options``).
    """
    from wirelessfl.learning.models import MODELS, causal_tokenizer

    model = resolve(MODELS, "model.name", sc.model.name, sc.model.options, "model.options")
    try:
        tokenizer = model.tokenizer()
        return causal_tokenizer(tokenizer) if sc.model.task == "causal_lm" else tokenizer
    except ValueError as err:
        raise PluginError("model.options", str(err)) from None


def load_data(sc: Scenario) -> Any:
    """The scenario's data set, tokenised to ``model.max_length`` (cached on disk).

    The model is resolved first (:func:`resolve_model`): the data source is told the
    task, and a causal LM's tokenizer pads with its EOS token when it has no pad token.

    Raises
    ------
    PluginError
        A data set that cannot be read (naming ``data.options``) or a model without
        a tokenizer (naming ``model.options``).
    ScenarioError
        Data of the wrong form for the task (naming ``data.options.format``).
    """
    from wirelessfl.learning.data import DATASETS, TokenData
    from wirelessfl.learning.models import MODELS
    from wirelessfl.learning.tokens import cached_tokenize

    sc = resolve_model(sc)
    causal = sc.model.task == "causal_lm"
    cls = DATASETS.get(sc.data.name)
    source = resolve(DATASETS, "data.name", sc.data.name, cls.options(sc.data), "data.options")
    source.task = sc.model.task
    try:
        out = source.load(seeding.rng(sc.seed, "data"), sc.model.max_length)
    except ValueError as err:
        raise PluginError("data.options", str(err)) from None
    if not isinstance(out, TokenData):
        model = resolve(MODELS, "model.name", sc.model.name, sc.model.options, "model.options")
        out = cached_tokenize(out, model_tokenizer(sc), sc.model.max_length,
                              f"{source.fingerprint()}|{model.identity()}")
    if out.causal and not causal:
        raise ScenarioError("data.options.format", f"{sc.data.name!r} gives generation data "
                            "(instructions or text), which trains a causal language model; "
                            "use format: classification, or a causal model (model.task: "
                            "causal_lm)")
    if causal and not out.causal:
        raise ScenarioError("data.options.format", f"a causal language model needs "
                            f"instruction or text data; {sc.data.name!r} gives class labels "
                            "(set data.options.format: instruction or text)")
    if out.held_out is not None:  # the data set's own test set: no split by test_fraction
        if out.held_out.all():
            raise ScenarioError("data.options", "every example is in the test set; the "
                                "training file (or split) holds none")
        return out
    counts = np.bincount(out.strata)
    if sum(int(round(sc.data.test_fraction * n)) for n in counts) < 1:
        raise ScenarioError("data.test_fraction", f"{sc.data.test_fraction} of {len(out)} "
                            "examples leaves the test set empty; raise it")
    return out


def build_workbench(sc: Scenario, aggregator: Any, compressor: Any) -> Any:
    """The learning workbench of ``sc``: data, shards, model and trainer, with the
    aggregator's frozen tensors and the compressor's training penalty."""
    from wirelessfl.learning.partition import split_shards
    from wirelessfl.learning.workbench import Workbench

    data = load_data(sc)
    shards = split_shards(sc, data)
    tokenizer = model_tokenizer(sc) if sc.eval.generate and data.from_text else None
    return Workbench(sc, data, shards, client_ranks(sc), frozen=aggregator.frozen,
                     regularizer=compressor.regularizer(),
                     merging=aggregator.merges_into_base, tokenizer=tokenizer)


class WorkbenchFactory:
    """Builds the workbench of a scenario, as the driver's own (for Ray actors).

    Picklable: it holds the resolved scenario as plain data. ``threads`` sets the
    actor's torch threads (part of what makes its arithmetic the driver's).
    """

    def __init__(self, scenario: dict[str, Any], threads: int) -> None:
        self.scenario = scenario
        self.threads = threads

    def __call__(self) -> Any:
        sc = Scenario.model_validate(self.scenario)
        sc.compute.backend = "local"
        sc.compute.torch_threads = self.threads
        aggregator, compressor, _ = build_methods(sc)
        return build_workbench(sc, aggregator, compressor)


@dataclass
class Components:
    """A scenario built and ready to run.

    The cell, aggregator, controller, compressor and selector are the run's mutable
    components (a checkpoint saves and restores them); the workbench holds the model
    and data; ``sizes`` the round sizes; ``preparation`` what the controller's
    offline stage decided.
    """

    scenario: Scenario
    preparation: Preparation
    profiles: list[DeviceProfile]
    cell: Cell
    aggregator: Any
    compressor: Any
    controller: Any
    selector: Any
    bench: Any
    sizes: RoundSizes
    n_selected: int
    loggers: list[Any] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """What ``summary.json`` says of the run besides its numbers."""
        sc, bench = self.scenario, self.bench
        return {"name": sc.name, "seed": sc.seed, "task": bench.task.name,
                "quality_metric": bench.task.quality,
                "latency_budget_s": sc.controller.latency_budget_s,
                "method": sc.method.model_dump(), "base_model": bench.base_recipe,
                "lora_rank": int(bench.alloc_rank), "label_names": bench.data.label_names,
                "device": str(bench.device), "clients_per_pass": bench.clients_per_pass,
                **({"batching_note": bench.batch_note} if bench.batch_note else {})}

    def plan(self) -> Plan:
        """The run's :class:`~wirelessfl.sizes.Plan` (what ``validate`` prints)."""
        from wirelessfl.learning.partition import shard_sizes

        bench = self.bench
        return Plan(self.scenario, self.cell, self.sizes, self.n_selected,
                    self.sizes.broadcast_bits(self.aggregator, bench.initial_state),
                    bool(self.compressor.sparsifies), bool(self.controller.needs_budget),
                    int(shard_sizes(bench.shards.train).sum()), int(len(bench.shards.test)),
                    int(sum(bench.numels.values())))


def build_components(sc: Scenario, preparation: Preparation | None = None) -> Components:
    """Every component of ``sc`` (the scenario as the offline stage left it)."""
    sc = resolve_model(sc)
    check_learning(sc)
    profiles = device_profiles(sc)
    client_ranks(sc)
    cell = build_cell(sc)
    aggregator, compressor, controller = build_methods(sc)
    check_adapter(sc, aggregator, compressor)
    selector = build_selector(sc)
    bench = build_workbench(sc, aggregator, compressor)
    check_memory(sc, profiles, bench)
    aggregator.setup(bench.sites, bench.initial_state)
    sizes = RoundSizes.measure(compressor, bench.shapes, bench.ranks, sc.radio.bits_per_value,
                               profiles, bench.step_flops, sc.clients.local_steps)
    if preparation is not None:
        preparation.scenario = sc
    return Components(sc, preparation if preparation is not None else Preparation(sc),
                      profiles, cell, aggregator, compressor, controller, selector, bench,
                      sizes, n_selected(selector, sc.clients.count, sc.clients.fraction),
                      build_loggers(sc))


def build_loggers(sc: Scenario) -> list[Logger]:
    """The experiment trackers of ``output.loggers``, their options checked."""
    return [resolve(LOGGERS, "output.loggers", name, sc.output.logger_options.get(name, {}),
                    f"output.logger_options.{name}") for name in sc.output.loggers]


def check_adapter(sc: Scenario, aggregator: Any, compressor: Any) -> None:
    """The adapter against the task, the methods and the LoRA keys (``sc`` resolved).

    Raises
    ------
    ScenarioError
        One line naming ``model.adapter`` (or its options) and what is allowed.
    """
    from pydantic import ValidationError

    from wirelessfl.learning import adapters

    kind, m = sc.model.adapter, sc.method
    if kind == "lora":
        if sc.model.adapter_options:
            raise ScenarioError("model.adapter_options", "LoRA's options are in model.lora; "
                                "adapter_options are for prompt_tuning, prefix_tuning and ia3")
        return
    if kind in adapters.CAUSAL_ONLY and sc.model.task != "causal_lm":
        raise ScenarioError("model.adapter", f"{kind} trains virtual tokens of a causal "
                            "language model; a classifier takes lora or ia3")
    for key, plugin, name in (("method.aggregator", aggregator, m.aggregator),
                              ("method.compressor", compressor, m.compressor)):
        if plugin.needs_lora:
            raise ScenarioError("model.adapter", f"{key} {name!r} works on LoRA factors; with "
                                f"{kind} use aggregator fedit and compressor none (or "
                                "adapter: lora)")
    lora = sc.model.lora
    if lora.client_ranks is not None or lora.rank_by_device is not None:
        raise ScenarioError("model.adapter", f"heterogeneous LoRA ranks do not apply to {kind}; "
                            "drop model.lora.client_ranks / rank_by_device")
    try:
        adapters.params(kind, sc.model.adapter_options)
    except ValidationError as err:
        k, msg = format_validation_error(err, prefix="model.adapter_options")
        raise ScenarioError(k, msg) from None


def check_memory(sc: Scenario, profiles: list[DeviceProfile], bench: Any) -> None:
    """Every client's device must hold the model's training (weights, optimiser state,
    activations of one local batch).

    Raises
    ------
    ScenarioError
        Naming ``clients.device`` for the first profile too small.
    """
    from wirelessfl.learning.batched import bytes_per_client

    weights = 4 * sum(p.numel() for p in bench.model.parameters())
    need = weights + bytes_per_client(bench.model, sc.clients.batch_size, sc.model.max_length)
    for p in sorted(set(profiles), key=lambda p: p.memory_bytes):
        if need > p.memory_bytes:
            raise ScenarioError("clients.device", f"{sc.model.name} needs about "
                                f"{need / 2**30:.2g} GiB to train at {sc.clients.batch_size} x "
                                f"{sc.model.max_length} tokens; a {p.name!r} device has "
                                f"{p.memory_bytes / 2**30:.2g} GiB: use a larger profile, or a "
                                "smaller clients.batch_size or model.max_length")


def build_run(sc: Scenario, offline: bool = True) -> Components:
    """The components of ``sc`` after its controller's offline stage.

    The controller's :meth:`~wirelessfl.control.Controller.prepare` hook runs first
    (TSFA's pilot picks the structural rank; ``offline=False`` only checks its
    options); the run's components are then built once, from the scenario it returns.
    """
    controller = build_methods(sc)[2]
    prep = controller.prepare(sc, build_components, offline)
    return build_components(prep.scenario, prep)
