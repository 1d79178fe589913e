"""Scenario YAML -> validated, typed :class:`Scenario`.

Owns the schema (pydantic models with units in the key names), loading with the
bounded YAML 1.2 reader of :mod:`wirelessfl.yamlsafe`, ``--set key.path=value``
overrides, JSON Schema export and the
translation of validation failures into one-line :class:`ScenarioError` messages
that name the key path and what is allowed. Knows nothing of torch or simulation:
plug-in names (models, channels, aggregators, ...) are checked when the run is built
(see :mod:`wirelessfl.build`), with the same one-line errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from wirelessfl import yamlsafe
from wirelessfl.errors import ScenarioError, shorten


def _admits_bool(annotation: Any) -> bool:
    """Whether a field's type admits a boolean (``bool``, ``Any``, or a union with bool)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_admits_bool(a) for a in get_args(annotation))


#: the most clients ``clients.population: eager`` (and ``auto``) hold eagerly
EAGER_MAX_CLIENTS = 100_000


class Section(BaseModel):
    """A scenario section: unknown keys are errors, floats are finite, and a boolean is
    never taken for a number (``rounds: true`` is an error, not one round)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                if field is None:
                    continue
                if isinstance(value, bool) and not _admits_bool(field.annotation):
                    raise _BoolError(name)
                if field.annotation is bool and not isinstance(value, bool):
                    raise _BoolError(name, number=True)
        return data


class _BoolError(ValueError):
    def __init__(self, key: str, number: bool = False) -> None:
        self.key = key
        self.number = number  # True: a non-boolean given for a boolean
        super().__init__(f"{key}: a boolean is not allowed here")


class PlugIn(BaseModel):
    """A plug-in choice: ``model`` names it, every other key is one of its parameters.

    The parameters are validated by the plug-in's own ``Params`` model when the run
    is built.
    """

    model_config = ConfigDict(extra="allow")
    model: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Placement(Section):
    model: Literal["disk", "ring", "explicit"] = Field(
        "disk", description="disk: uniform in an annulus; ring: all at radius_m; explicit"
    )
    radius_m: float = Field(300.0, gt=0, le=10_000, description="cell radius (disk, ring), metres")
    min_distance_m: float = Field(10.0, gt=0, le=10_000,
        description="minimum BS distance (disk), m")
    distances_m: list[Annotated[float, Field(gt=0, le=10_000)]] | None = Field(
        None, description="explicit: one distance per client, metres (at most 10 km)"
    )

    @model_validator(mode="after")
    def _check(self) -> Placement:
        if self.model == "disk" and self.min_distance_m >= self.radius_m:
            raise ValueError("min_distance_m must be smaller than radius_m")
        if self.model == "explicit" and not self.distances_m:
            raise ValueError("placement model 'explicit' needs distances_m (one per client)")
        if self.distances_m is not None and any(d <= 0 for d in self.distances_m):
            raise ValueError("distances_m must all be positive")
        return self


class Mobility(Section):
    model: Literal["static", "random_waypoint"] = Field(
        "static", description="static, or constant-speed random waypoint in the cell"
    )
    speed_mps: float = Field(1.5, gt=0, le=1_000,
        description="walking speed (random_waypoint), m/s")
    pause_s: float = Field(0.0, ge=0, le=1e6, description="pause at each waypoint, seconds")


class Clients(Section):
    count: int = Field(10, ge=1, le=10_000_000, description="number of clients K")
    population: Literal["auto", "eager", "lazy"] = Field(
        "auto", description="eager: every client's placement, shadowing and channel drawn "
        "at set-up (up to 100,000 clients); lazy: drawn from per-client streams only for "
        "the clients a round touches; auto: lazy above 100,000 clients")
    fraction: float = Field(1.0, gt=0, le=1, description="share of clients selected per round")
    selection: str = Field(
        "random", description="client selector: random | all | round_robin | channel_aware | "
        "an installed plug-in")
    selection_options: dict[str, Any] = Field(
        default_factory=dict, description="the selector's own options (validated by it)")
    device: str | list[str] = Field(
        "phone", description="compute profile (iot | phone | jetson | laptop_gpu), or a list "
        "cycled over the clients"
    )
    local_steps: int = Field(4, ge=1, le=100_000, description="local optimiser steps per round")
    batch_size: int = Field(16, ge=1, le=65_536, description="local mini-batch size")
    learning_rate: float = Field(1e-3, gt=0, le=1e3, description="AdamW learning rate")
    weight_decay: float = Field(0.0, ge=0, le=1e3, description="AdamW weight decay")
    placement: Placement = Field(default_factory=Placement)
    mobility: Mobility = Field(default_factory=Mobility)


class Radio(Section):
    uplink_bandwidth_hz: float = Field(20e6, ge=1, le=1e12,
        description="total FDMA uplink bandwidth B")
    downlink_bandwidth_hz: float = Field(20e6, ge=1, le=1e12,
        description="broadcast downlink bandwidth")
    tx_power_dbm: float = Field(23.0, ge=-100, le=100, description="client transmit power")
    bs_tx_power_dbm: float = Field(43.0, ge=-100, le=100, description="base-station transmit power")
    noise_psd_dbm_hz: float = Field(-174.0, ge=-250, le=0,
        description="thermal noise power spectral density")
    noise_figure_db: float = Field(7.0, ge=0, le=100, description="receiver noise figure")
    bits_per_value: int = Field(32, ge=1, le=64, description="bits per transmitted value q")
    resource_block_hz: float | None = Field(
        None, ge=1, le=1e12, description="OFDMA resource block width (e.g. 360e3: 12 "
        "subcarriers at 30 kHz); every controller then allocates whole blocks. Unset: "
        "continuous bandwidth")

    @field_validator("resource_block_hz")
    @classmethod
    def _blocks_fit(cls, w: float | None, info: ValidationInfo) -> float | None:
        band = info.data.get("uplink_bandwidth_hz")
        if w is not None and band is not None and w > band:
            raise ValueError(f"{w:g} Hz is wider than radio.uplink_bandwidth_hz ({band:g} Hz): "
                             "the band must hold at least one block")
        return w


class Csi(Section):
    kind: Literal["auto", "instantaneous", "statistical"] = Field(
        "auto", description="auto: the measured gain while its coherence block lasts, then "
        "the channel's (conditional) law over the upload window; instantaneous: the "
        "measured gain for the whole upload; statistical: the channel's law only "
        "(ergodic rate)"
    )
    error_std_db: float = Field(
        0.0, ge=0, le=30, description="log-normal error of the controller's gain estimate, dB"
    )
    delay_s: float = Field(0.0, ge=0, le=1e6, description="age of the controller's CSI, seconds")
    planning: Literal["auto", "mean_rate", "expected_finish"] = Field(
        "auto", description="mean_rate: an upload ends when the expected bits reach the "
        "payload; expected_finish: the mean of its finishing time over sample paths of the "
        "gain (unbiased when an upload spans few coherence times; slower); auto: "
        "expected_finish for time-correlated models (jakes, tdl, cdl), else mean_rate")


class Channel(Section):
    fading: PlugIn = Field(
        default_factory=lambda: PlugIn(model="rayleigh"),
        description="small-scale fading plug-in (`wirelessfl channels` lists them)",
    )
    pathloss: PlugIn = Field(
        default_factory=lambda: PlugIn(model="log_distance"),
        description="large-scale path loss and shadowing (`wirelessfl channels`)",
    )
    csi: Csi = Field(default_factory=Csi)


class Lora(Section):
    rank: int = Field(8, ge=1, le=1024, description="LoRA rank r")
    alpha: float = Field(16.0, gt=0, le=1e6, description="LoRA alpha (scaling alpha / r)")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout")
    target_modules: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, min_length=1, max_length=1000,
        description="module names to adapt (each must name modules of the model); null: the "
        "architecture's usual ones (query/value, q_proj/v_proj, c_attn, ...)"
    )
    client_ranks: list[Annotated[int, Field(ge=1, le=1024)]] | None = Field(
        None, description="heterogeneous ranks: one per client (default: rank for all)"
    )

    @field_validator("target_modules")
    @classmethod
    def _distinct_targets(cls, names: list[str] | None) -> list[str] | None:
        if names is not None:
            seen = [n for i, n in enumerate(names) if n in names[:i]]
            if seen:
                raise ValueError(f"{seen[0]!r} is listed twice; name each module once")
        return names
    rank_by_device: dict[str, Annotated[int, Field(ge=1, le=1024)]] | None = Field(
        None, description="heterogeneous ranks by compute profile, e.g. {phone: 4, jetson: 8}"
    )


class Model(Section):
    name: str = Field(
        "tiny-bert", description="tiny-bert (random init, tests) | minilm-l6 (pretrained) | "
        "hf (a local Hugging Face folder, options.path) | an installed plug-in"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="the model's own options (validated by it)")
    task: Literal["auto", "classification", "causal_lm"] = Field(
        "auto", description="what the model learns: classification (encoder + head) or "
        "causal_lm (next-token prediction); auto: the model's own")
    max_length: int = Field(64, ge=4, le=512, description="tokens per example")
    pooling: Literal["mean", "cls"] = Field("mean", description="sentence pooling for the head")
    adapter: Literal["lora", "prompt_tuning", "prefix_tuning", "ia3"] = Field(
        "lora", description="parameter-efficient adapter (peft): lora | prompt_tuning | "
        "prefix_tuning (causal LMs) | ia3")
    adapter_options: dict[str, Any] = Field(
        default_factory=dict, description="options of a prompt-family adapter, e.g. "
        "{num_virtual_tokens: 16} (LoRA's are in model.lora)")
    lora: Lora = Field(default_factory=Lora)


class Partition(Section):
    scheme: Literal["iid", "dirichlet", "natural"] = Field(
        "dirichlet", description="iid | dirichlet (label skew) | natural (by a data column)")
    alpha: float = Field(0.5, gt=0, le=1e6,
        description="Dirichlet concentration (smaller: less IID)")
    min_samples: int = Field(8, ge=1, le=1_000_000,
        description="minimum training examples per client")
    column: str | None = Field(
        None, min_length=1, max_length=200,
        description="natural: the column whose values split the data (one client per value, "
        "or a value's examples spread over several clients when there are fewer values)")


class Synthetic(Section):
    num_samples: int = Field(2000, ge=10, le=100_000_000, description="examples generated")
    num_classes: int = Field(4, ge=2, le=1_000, description="classes")
    vocab_size: int = Field(500, ge=16, le=1_000_000,
        description="token ids drawn from [1, vocab_size)")
    signal_tokens: int = Field(4, ge=1, le=512, description="class-keyword tokens per example")


class Data(Section):
    name: str = Field("synthetic", description="synthetic | bbc (BBC News, needs the [data] "
                      "extra) | csv | jsonl | hf_disk | an installed plug-in")
    options: dict[str, Any] = Field(
        default_factory=dict, description="the data set's own options (validated by it), "
        "e.g. {path: data.csv, text_column: text, label_column: label}")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="held-out share (stratified)")
    partition: Partition = Field(default_factory=Partition)
    synthetic: Synthetic = Field(default_factory=Synthetic)


class Method(Section):
    aggregator: str = Field("fedit", description="aggregation rule")
    compressor: str = Field("none", description="update compressor")
    controller: str = Field("equal", description="bandwidth / sparsification controller")
    aggregator_options: dict[str, Any] = Field(
        default_factory=dict, description="the aggregator's own options (validated by it)")
    compressor_options: dict[str, Any] = Field(
        default_factory=dict, description="the compressor's own options (validated by it)")
    controller_options: dict[str, Any] = Field(
        default_factory=dict, description="the controller's own options (validated by it)")


class Controller(Section):
    latency_budget_s: float | None = Field(
        None, gt=0, le=1e9, description="long-term average round-latency budget T_budget, "
        "seconds"
    )


class Sim(Section):
    deadline_s: float | None = Field(
        None, gt=0, le=1e9, description="per-round deadline; later clients are dropped, "
        "seconds"
    )
    max_upload_s: float = Field(
        600.0, gt=0, le=86_400, description="an upload (or broadcast) still running this "
        "long is an outage, seconds"
    )
    expected_latency_rounds: int = Field(
        200, ge=1, le=10_000,
        description="timeline rounds averaged for validate's expected round latency"
    )
    expected_latency_precision: float = Field(
        0.02, ge=0, le=1,
        description="validate stops averaging rounds (after 10) once the standard error of "
        "the mean latency is at most this fraction of it; 0 plays every round"
    )


class Generate(Section):
    samples: int = Field(32, ge=1, le=100_000,
        description="held-out prompts completed at each evaluation (a fixed sample)")
    max_new_tokens: int = Field(32, ge=1, le=1024,
        description="longest completion, tokens (greedy decoding stops at the end token)")


class Eval(Section):
    every: int = Field(1, ge=1, le=1_000_000,
        description="evaluate every this many rounds (and the last)")
    batch_size: int = Field(64, ge=1, le=65_536, description="evaluation batch size")
    personal_examples: int = Field(
        100, ge=1, le=100_000, description="per-client test examples (its training label mix) for "
        "personalised accuracy"
    )
    max_examples: int | None = Field(
        None, ge=1, le=100_000_000, description="evaluate the global model on at most this "
        "many test examples (a fixed random subset, drawn once from the run's seed; "
        "default: the whole test set)")
    generate: Generate | None = Field(
        None, description="causal LMs: greedy completions of held-out prompts, scored by "
        "rougeL and exact_match (host time only)")


class Compute(Section):
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="torch device")
    torch_threads: int | None = Field(None, ge=1, le=1024,
        description="CPU threads (default: torch's)")
    batch_clients: bool = Field(
        True, description="train a round's clients together, their batches in one "
        "forward/backward (exact: the same updates as one by one, up to float rounding); "
        "false: one client after another")
    max_batched_clients: int | None = Field(
        None, ge=1, le=100_000, description="at most this many clients in one batched "
        "pass (default: on a GPU as many as fit a quarter of its memory, on the CPU 4,096 "
        "tokens' worth: measured faster than one by one)")
    backend: Literal["local", "ray"] = Field(
        "local", description="where clients train: local (this process) | ray (a pool of "
        "Ray actors; needs the [ray] extra)")
    ray_address: str | None = Field(
        None, description="ray backend: address of a running Ray cluster (default: start a "
        "local one)")
    ray_actors: int | None = Field(
        None, ge=1, le=10_000, description="ray backend: training actors (default: the "
        "cluster's CPUs / torch_threads)")


class Output(Section):
    dir: str = Field("results/{name}", min_length=1, max_length=4096,
                     description="results folder; {name} is replaced")

    @field_validator("dir")
    @classmethod
    def _a_folder(cls, d: str) -> str:
        if "\x00" in d:
            raise ValueError("a path cannot hold a NUL character")
        path = Path(d)
        try:
            not_a_folder = path.exists() and not path.is_dir()
        except OSError as err:  # a name too long for the file system, say
            raise ValueError(f"not a usable path ({err.strerror})") from None
        if not_a_folder:
            raise ValueError("exists and is not a folder (a file or a device); choose a "
                             "folder for the results")
        return d
    save_adapter: bool = Field(True, description="write the final peft adapter")
    plots: bool = Field(True, description="write plots at the end of the run")
    loggers: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=16, description="experiment trackers fed every "
        "round (logger plug-ins: tensorboard | mlflow | wandb, or a module:Class); need "
        "their extras")
    logger_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="options per logger name, e.g. {tensorboard: "
        "{dir: runs/tb}} (see `wirelessfl plugins`)")

    @model_validator(mode="after")
    def _options_of_loggers(self) -> Output:
        if len(set(self.loggers)) != len(self.loggers):
            raise ValueError("loggers: each logger at most once")
        extra = sorted(set(self.logger_options) - set(self.loggers))
        if extra:
            raise ValueError(f"logger_options: {extra[0]!r} is not in output.loggers "
                             f"({', '.join(self.loggers) or 'none'})")
        return self


class Scenario(Section):
    """A complete, validated scenario."""

    name: str = Field("scenario", pattern=r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$",
                      max_length=100,
                      description="run name (letters, digits, _ . -; not only dots)")
    seed: int = Field(0, ge=0, le=2**63 - 1,
        description="the one seed every random stream derives from")
    rounds: int = Field(10, ge=1, le=1_000_000, description="federated rounds")
    clients: Clients = Field(default_factory=Clients)
    radio: Radio = Field(default_factory=Radio)
    channel: Channel = Field(default_factory=Channel)
    model: Model = Field(default_factory=Model)
    data: Data = Field(default_factory=Data)
    method: Method = Field(default_factory=Method)
    controller: Controller = Field(default_factory=Controller)
    sim: Sim = Field(default_factory=Sim)
    eval: Eval = Field(default_factory=Eval)
    compute: Compute = Field(default_factory=Compute)
    output: Output = Field(default_factory=Output)

    def cross_check(self) -> None:
        """Checks that span sections; raise :class:`ScenarioError`."""
        pl = self.clients.placement
        if pl.distances_m is not None and pl.model != "explicit":
            raise ScenarioError("clients.placement.distances_m",
                                f"is used only by placement model 'explicit' (model is "
                                f"{pl.model!r}); drop it or set model: explicit")
        csi = self.channel.csi
        if csi.kind == "statistical" and (csi.error_std_db > 0 or csi.delay_s > 0):
            raise ScenarioError("channel.csi.kind", "statistical CSI has no estimate, so "
                                "error_std_db and delay_s do not apply; set them to 0 or use "
                                "auto / instantaneous")
        part = self.data.partition
        if part.scheme == "natural" and part.column is None:
            raise ScenarioError("data.partition.column", "the natural partition needs the "
                                "column whose values split the data (e.g. topic, category)")
        if part.column is not None and part.scheme != "natural":
            raise ScenarioError("data.partition.column", f"is used only by scheme 'natural' "
                                f"(scheme is {part.scheme!r}); drop it or set scheme: natural")
        syn = self.data.synthetic
        if self.data.name == "synthetic" and syn.vocab_size <= 2 + 4 * syn.num_classes:
            raise ScenarioError("data.synthetic.vocab_size",
                                f"must exceed {2 + 4 * syn.num_classes} for {syn.num_classes} "
                                "classes (four keyword tokens per class, plus fillers)")
        if ".." in Path(self.output.dir).parts:
            raise ScenarioError("output.dir", f"{self.output.dir!r} climbs out with '..'; "
                                "give the folder without '..' (or pass --out on the command "
                                "line)")
        cl = self.clients
        if cl.population == "eager" and cl.count > EAGER_MAX_CLIENTS:
            raise ScenarioError("clients.population", f"eager holds every client's state "
                                f"from the start, up to {EAGER_MAX_CLIENTS:,} clients; "
                                f"{cl.count:,} need lazy (or auto)")
        d = self.clients.placement.distances_m
        if d is not None and len(d) != self.clients.count:
            raise ScenarioError(
                "clients.placement.distances_m",
                f"has {len(d)} entries; clients.count is {self.clients.count}",
            )
        lora = self.model.lora
        if lora.client_ranks is not None:
            if lora.rank_by_device is not None:
                raise ScenarioError("model.lora.client_ranks",
                                    "give client_ranks or rank_by_device, not both")
            if len(lora.client_ranks) != self.clients.count:
                raise ScenarioError("model.lora.client_ranks",
                                    f"has {len(lora.client_ranks)} entries; clients.count is "
                                    f"{self.clients.count}")
        ranks = list(lora.client_ranks or []) + list((lora.rank_by_device or {}).values())
        if any(r < 1 for r in ranks):
            raise ScenarioError("model.lora.client_ranks" if lora.client_ranks
                                else "model.lora.rank_by_device", "ranks must be >= 1")

    @property
    def lazy_population(self) -> bool:
        """Whether client state is drawn lazily, per client (``clients.population``)."""
        p = self.clients.population
        return p == "lazy" or (p == "auto" and self.clients.count > EAGER_MAX_CLIENTS)

    @property
    def output_dir(self) -> Path:
        return Path(self.output.dir.replace("{name}", self.name))

    def to_yaml(self) -> str:
        """The resolved scenario (defaults filled in) as YAML."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# --------------------------------------------------------------------------- loading


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``key.path=value`` override to a raw scenario dict in place.

    ``value`` is parsed as YAML, so ``3``, ``1e6``, ``true``, ``[1, 2]`` and ``null``
    get their types.
    """
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError("--set", f"expected key.path=value, got {assignment!r}")
    parsed = yamlsafe.loads(value, key=f"--set {key}")
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ScenarioError(".".join(parts[: i + 1]),
                                "is not a section; cannot set a key in it")
        node = child
    node[parts[-1]] = parsed


def _allowed_keys(loc: tuple[Any, ...]) -> list[str] | None:
    """The keys allowed in the section that ``loc`` points into, if it is a Section."""
    model: Any = Scenario
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = field.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return None


def format_validation_error(err: ValidationError, prefix: str = "") -> tuple[str, str]:
    """First error of a pydantic ValidationError as ``(key_path, message)``."""
    e = err.errors()[0]
    loc = tuple(e["loc"])
    bad_bool = (e.get("ctx") or {}).get("error")
    if isinstance(bad_bool, _BoolError):
        loc = (*loc, bad_bool.key)
        e = {"type": "bool", "msg": ("give true or false" if bad_bool.number else
                                     "a boolean is not a number here; give a number"),
             "input": {}}
    key = ".".join(str(p) for p in loc)
    if prefix:
        key = f"{prefix}.{key}" if key else prefix
    if e["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc) if not prefix else None
        msg = "unknown key"
        if allowed:
            msg += f"; allowed: {', '.join(allowed)}"
        return key, msg
    msg = e["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if e["type"] not in ("missing",) and "input" in e and not isinstance(e["input"], dict):
        msg += f" (got {shorten(repr(e['input']))})"
    return key, msg


def parse_scenario(raw: dict[str, Any]) -> Scenario:
    """Validate a raw dict; raise :class:`ScenarioError` naming the first bad key."""
    if not isinstance(raw, dict):
        raise ScenarioError("scenario", "the top level must be a mapping of keys")
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as err:
        key, msg = format_validation_error(err)
        raise ScenarioError(key or "scenario", msg) from None
    scenario.cross_check()
    return scenario


def load_raw(path: str | Path) -> dict[str, Any]:
    """Read a scenario YAML file into a dict (no validation; see :mod:`wirelessfl.yamlsafe`).

    An empty file, or one holding only ``{}``, is an error: a scenario that says
    nothing is a mistake, not a request for every default.

    The file's folder becomes importable (appended to ``sys.path``, after everything
    installed), so a plug-in in a file next to the scenario is named
    ``"my_fading:MyFading"`` with no ``PYTHONPATH``.
    """
    import sys

    raw = yamlsafe.read(path)
    folder = str(Path(path).resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
    if raw is None or raw == {}:
        raise ScenarioError("scenario file", f"{str(path)!r} is empty; a scenario needs at "
                            "least a name (see scenarios/smoke.yaml)")
    return raw


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Load, override and validate a scenario file."""
    raw = load_raw(path)
    if not isinstance(raw, dict):
        raise ScenarioError("scenario", "the top level must be a mapping of keys")
    for assignment in overrides:
        apply_override(raw, assignment)
    return parse_scenario(raw)


def first_difference(old: Any, new: Any, key: str = "") -> str | None:
    """Dotted key of the first place where two nested config dicts differ, else None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in [*old, *(k for k in new if k not in old)]:
            if k == "output" and not key:
                continue  # where results go is not part of what was run
            diff = first_difference(old.get(k), new.get(k), f"{key}.{k}" if key else str(k))
            if diff:
                return diff
        return None
    return None if old == new else f"{key} (was {old!r}, now {new!r})"


def json_schema() -> dict[str, Any]:
    """JSON Schema of the scenario format, for editors."""
    schema = Scenario.model_json_schema()
    schema["title"] = "wirelessfl scenario"
    return schema
