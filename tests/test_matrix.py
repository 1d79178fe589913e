"""Every plug-in combination runs: aggregator x compressor x controller, every selector,
every fading and path-loss model, each for 2 rounds on a tiny in-memory scenario; the
method matrix runs on a tiny encoder (classification) and a tiny Llama (causal LM).

The lists come from the registries, so a plug-in added later is in the matrix without
touching this file. A combination that cannot work must be refused at build time with
one line naming the key (:class:`wirelessfl.errors.WirelessFLError`); none is today.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest

import wirelessfl
from wirelessfl.cli import plugin_registries
from wirelessfl.columns import CLIENTS as CLIENT_COLUMNS
from wirelessfl.columns import METRICS as METRIC_COLUMNS

REGISTRIES = {title.split(" (")[1].rstrip(")"): reg for title, reg in plugin_registries()}
AGGREGATORS = REGISTRIES["method.aggregator"].names()
COMPRESSORS = REGISTRIES["method.compressor"].names()
CONTROLLERS = REGISTRIES["method.controller"].names()
SELECTORS = REGISTRIES["clients.selection"].names()
FADING = [n for n in REGISTRIES["channel.fading.model"].names() if n != "trace"]  # needs a file
PATHLOSS = REGISTRIES["channel.pathloss.model"].names()

BASE = {
    "name": "matrix",
    "seed": 5,
    "rounds": 2,
    "clients": {"count": 3, "local_steps": 1, "batch_size": 8, "learning_rate": 0.01,
                "device": "jetson"},
    "radio": {"uplink_bandwidth_hz": 1.0e6},
    "channel": {"fading": {"model": "rayleigh", "coherence_time_s": 0.005}},
    "model": {"name": "tiny-bert", "max_length": 8, "lora": {"rank": 2, "alpha": 4}},
    "data": {"name": "synthetic", "synthetic": {"num_samples": 90, "num_classes": 3},
             "partition": {"scheme": "iid"}},
    "controller": {"latency_budget_s": 0.05},
    "eval": {"batch_size": 64},
    "compute": {"torch_threads": 1, "max_batched_clients": 3},
    "output": {"plots": False, "save_adapter": False},
}

# options a plug-in cannot run without (its parameters have no usable default)
NEEDS = {"jakes": {"max_doppler_hz": 20.0}, "tdl": {"max_doppler_hz": 20.0},
         "cdl": {"max_doppler_hz": 20.0, "subcarriers": 16}}

METHODS = list(itertools.product(AGGREGATORS, COMPRESSORS, CONTROLLERS))
MODELS = {"tiny-bert": {"name": "tiny-bert", "max_length": 8},
          "tiny-llama": {"name": "tiny-llama", "max_length": 8}}


def scenario(aggregator: str = "fedit", compressor: str = "none", controller: str = "equal",
             selector: str = "all", model: str = "tiny-bert") -> dict:
    raw = copy.deepcopy(BASE)
    raw["model"] = {**MODELS[model], "lora": dict(BASE["model"]["lora"])}
    raw["method"] = {"aggregator": aggregator, "compressor": compressor,
                     "controller": controller}
    raw["clients"]["selection"] = selector
    if selector != "all":
        raw["clients"]["fraction"] = 2 / 3  # 2 of the 3 clients a round
    return raw


def check_run(raw: dict) -> wirelessfl.Run:
    r = wirelessfl.run(raw, output=None)
    m = r.metrics
    assert len(m) == raw["rounds"]
    assert np.all(np.isfinite(m["sim_time_s"])) and np.all(np.diff(m["sim_time_s"]) > 0)
    quality = r.summary["quality_metric"]
    assert np.all(np.isfinite(m[quality])) and np.all(np.isfinite(m["train_loss"]))
    assert np.all(m["received"] + m["dropped"] == m["selected"])
    assert np.all(np.where(m["received"] > 0, m["uplink_bits"] > 0, True))
    assert r.summary["rounds"] == raw["rounds"]
    assert math.isfinite(r.summary[f"final_{quality}"])
    c = r.clients
    assert np.all(c["bandwidth_hz"] >= 0)
    for _, rows in c.groupby("round"):  # FDMA: the band is never over-allocated
        total = rows["bandwidth_hz"].sum()
        if raw["method"]["controller"] != "ideal":  # ideal gives everyone the whole band
            assert total <= raw["radio"]["uplink_bandwidth_hz"] * (1 + 1e-9)
    assert np.all(c["keep_ranks"] <= c["rank"])
    # every column is in the glossary (docs/columns.md)
    assert set(m.columns) <= set(METRIC_COLUMNS), set(m.columns) - set(METRIC_COLUMNS)
    assert set(c.columns) <= set(CLIENT_COLUMNS), set(c.columns) - set(CLIENT_COLUMNS)
    return r


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize(("aggregator", "compressor", "controller"), METHODS,
                         ids=["-".join(x) for x in METHODS])
def test_every_method_combination_runs(aggregator, compressor, controller, model):
    # selectors cycle over the matrix, so each runs with a quarter of the combinations
    selector = SELECTORS[METHODS.index((aggregator, compressor, controller)) % len(SELECTORS)]
    check_run(scenario(aggregator, compressor, controller, selector, model))


@pytest.mark.parametrize("fading", FADING)
def test_every_fading_model_runs_under_tsfa(fading):
    raw = scenario("fedit", "soft", "tsfa", "random")
    raw["channel"]["fading"] = {"model": fading, **NEEDS.get(fading, {})}
    check_run(raw)


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("compressor", ["none", "soft"])
def test_every_controller_runs_in_whole_resource_blocks(controller, compressor):
    raw = scenario("fedit", compressor, controller)
    raw["radio"]["resource_block_hz"] = 180e3  # 5 blocks of the 1 MHz band (0.1 unused)
    c = check_run(raw).clients
    np.testing.assert_allclose(c["bandwidth_hz"], c["resource_blocks"] * 180e3)
    if controller != "ideal":  # the others hand out every block of the band
        assert set(c.groupby("round")["resource_blocks"].sum()) == {5}


@pytest.mark.parametrize("pathloss", PATHLOSS)
def test_every_pathloss_model_runs(pathloss):
    raw = scenario("fedit", "none", "minmax")
    raw["channel"]["pathloss"] = {"model": pathloss}
    check_run(raw)


def test_the_matrix_covers_every_registered_plugin():
    assert len(METHODS) == len(AGGREGATORS) * len(COMPRESSORS) * len(CONTROLLERS) >= 140
    cycled = {SELECTORS[i % len(SELECTORS)] for i in range(len(METHODS))}
    assert cycled == set(SELECTORS)
