"""Third-party plug-ins: a tiny package installed with entry points, run from a scenario.

The package is really installed (``pip install --target``, its own dist-info with
``entry_points.txt``) into a temporary folder, and a fresh ``wirelessfl`` process with
that folder on its path runs a scenario naming the package's plug-ins of every kind
(aggregator, compressor, controller, fading channel, path loss, client selector, model,
data set) by their entry-point names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from wirelessfl.compression.identity import Identity
from wirelessfl.registry import ENTRY_POINT_GROUPS, Registry, UnknownNameError

PLUGIN = '''
import numpy as np
import torch

from channels.base import Channel
from wirelessfl.compression.identity import Identity
from wirelessfl.control.base import Allocation, Controller, planned_latency_s
from wirelessfl.learning.aggregators.base import Aggregator
from wirelessfl.learning.data import DataSource, TokenData
from wirelessfl.learning.models import ModelSource
from wirelessfl.network.pathloss import PathLoss
from wirelessfl.registry import NoParams
from wirelessfl.selection import Selector


class Doubled(Identity):
    """Sends every value twice."""

    def payload_bits(self, shapes, rank, bits_per_value, keep_ranks):
        return 2 * super().payload_bits(shapes, rank, bits_per_value, keep_ranks)


class Flat100(PathLoss):
    """100 dB at every distance, no shadowing."""

    Params = NoParams

    def loss_db(self, distance_m):
        return np.full(np.shape(distance_m), 100.0)


class MiniBert(ModelSource):
    """A 1-layer, 16-wide BERT."""

    pretrained = False

    def encoder(self, vocab_size, max_length):
        from transformers import BertConfig, BertModel

        return BertModel(BertConfig(vocab_size=vocab_size, hidden_size=16,
                                    num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32), add_pooling_layer=False)


class Parity(DataSource):
    """Label = parity of the first token."""

    def load(self, rng, max_length):
        ids = rng.integers(1, 40, (160, max_length))
        return TokenData(torch.as_tensor(ids), torch.ones(160, max_length, dtype=torch.long),
                         torch.as_tensor(ids[:, 0] % 2), ["even", "odd"], 40)


class HalfStep(Aggregator):
    """Moves the global state half-way to the clients' plain mean."""

    def aggregate(self, global_state, updates):
        new = {n: 0.5 * global_state[n] + 0.5 * sum(u.state[n] for u in updates) / len(updates)
               for n in global_state}
        return new, {"halfstep_clients": float(len(updates))}


class FirstGetsHalf(Controller):
    """The first selected client gets half the band; the rest share the other half."""

    def online(self, ctx):
        n = len(ctx.client_ids)
        b = np.full(n, ctx.bandwidth_hz / (2 * max(n - 1, 1)))
        b[0] = ctx.bandwidth_hz / 2 if n > 1 else ctx.bandwidth_hz
        return Allocation(b, None, planned_latency_s(ctx, b, ctx.full_bits))


class HalfPower(Channel):
    """A constant gain of one half."""

    coherence_time_s = float("inf")

    def reset(self, n_links, rng):
        self.n_links = int(n_links)

    def gains(self, times_s):
        return np.full((self.n_links, np.size(times_s)), 0.5)


class EvenClients(Selector):
    """Even-numbered clients only."""

    uses_fraction = False

    def select(self, view, rng):
        return np.arange(0, view.count, 2)
'''

SETUP = '''
[metadata]
name = wfl-extra
version = 0.0.1

[options]
py_modules = wfl_extra

[options.entry_points]
wirelessfl.aggregators =
    halfstep = wfl_extra:HalfStep
wirelessfl.controllers =
    first_half = wfl_extra:FirstGetsHalf
wirelessfl.channels =
    half_power = wfl_extra:HalfPower
wirelessfl.selectors =
    even = wfl_extra:EvenClients
wirelessfl.compressors =
    doubled = wfl_extra:Doubled
wirelessfl.pathloss =
    flat100 = wfl_extra:Flat100
wirelessfl.models =
    mini-bert = wfl_extra:MiniBert
wirelessfl.datasets =
    parity = wfl_extra:Parity
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    src = tmp_path_factory.mktemp("wfl_extra_src")
    (src / "wfl_extra.py").write_text(PLUGIN)
    (src / "setup.cfg").write_text(SETUP)
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\n'
                                        'build-backend = "setuptools.build_meta"\n')
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(src)],
                   check=True, capture_output=True, timeout=300)
    assert list(target.glob("wfl_extra-*.dist-info/entry_points.txt"))
    return target


def _run(installed, raw, folder, compressor):
    raw = json.loads(json.dumps(raw))
    raw["method"]["compressor"] = compressor
    raw["output"] = {"dir": str(folder), "plots": False, "save_adapter": False}
    scenario = folder.parent / f"{folder.name}.yaml"
    scenario.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "PYTHONPATH": str(installed), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "wirelessfl.cli", "run", str(scenario), "-q"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return list(csv_rows(folder / "clients.csv")), list(csv_rows(folder / "metrics.csv"))


def test_an_installed_plugin_package_runs_from_a_scenario(installed, tiny_raw, tmp_path):
    raw = tiny_raw
    raw["clients"]["count"] = 4
    raw["rounds"] = 2
    raw["channel"] = {"fading": {"model": "half_power"}, "pathloss": {"model": "flat100"}}
    raw["clients"]["selection"] = "even"
    raw["model"] = {"name": "mini-bert", "max_length": 8, "lora": {"rank": 2, "alpha": 4}}
    raw["data"] = {"name": "parity", "partition": {"scheme": "iid"}}
    raw["method"] = {"aggregator": "halfstep", "controller": "first_half"}
    rows, metrics = _run(installed, raw, tmp_path / "run", "doubled")
    plain, _ = _run(installed, raw, tmp_path / "plain", "none")
    assert {int(r["client"]) for r in rows} == {0, 2}  # the selector
    b = {int(r["client"]): float(r["bandwidth_hz"]) for r in rows if r["round"] == "0"}
    assert b[0] == pytest.approx(0.5e6) and b[2] == pytest.approx(0.5e6)  # the controller
    assert all(float(m["halfstep_clients"]) == 2 for m in metrics)  # the aggregator
    assert all(float(r["gain_db"]) == -100.0 for r in rows)  # the path loss
    for r, p in zip(rows, plain, strict=True):  # the compressor
        assert int(r["payload_bits"]) == 2 * int(p["payload_bits"])
    # the channel: SNR = p beta g / (N0 b) with g = 1/2 exactly
    from wirelessfl.scenario import Radio

    radio = Radio.model_validate(raw.get("radio", {}))
    for r in rows:
        expected = (radio.tx_power_dbm - 100.0 + 10 * np.log10(0.5)
                    - radio.noise_psd_dbm_hz - radio.noise_figure_db
                    - 10 * np.log10(float(r["bandwidth_hz"])))
        assert float(r["snr_db"]) == pytest.approx(expected, abs=1e-9)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["base_model"]["name"] == "mini-bert"  # the model
    assert summary["label_names"] == ["even", "odd"]  # the data set
    env = {**os.environ, "PYTHONPATH": str(installed)}
    listing = subprocess.run([sys.executable, "-m", "wirelessfl.cli", "plugins"],
                             capture_output=True, text=True, env=env, timeout=120).stdout
    for name in ("halfstep", "first_half", "half_power", "even", "doubled", "flat100",
                 "mini-bert", "parity"):
        assert name in listing


def csv_rows(path):
    import csv

    with path.open(newline="") as fh:
        yield from csv.DictReader(fh)


def test_every_plugin_kind_has_an_entry_point_group():
    from wirelessfl.cli import plugin_registries

    groups = {reg.entry_point_group for _, reg in plugin_registries()}
    assert groups == set(ENTRY_POINT_GROUPS.values())


class Base:
    pass


class Good(Base):
    pass


def test_import_paths_are_checked_for_syntax_and_kind():
    reg: Registry[Base] = Registry("thing", Base)
    assert reg.get(f"{__name__}:Good") is Good
    with pytest.raises(UnknownNameError, match="not a thing"):
        reg.get("collections:OrderedDict")  # importable, wrong kind
    for bad in (":", "a:", ":b", "a b:C", "os:path:join", "../x:Y"):
        with pytest.raises(UnknownNameError, match="package.module:Class"):
            reg.get(bad)


def test_a_wrong_kind_of_class_is_one_line_naming_the_key(tiny_raw, tmp_path, capsys):
    from wirelessfl.cli import main

    tiny_raw["channel"] = {"fading": {"model": "collections:OrderedDict"}}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(tiny_raw))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: channel.fading.model:") and "\n" not in err


class SparsifiesWithoutProfile(Identity):
    """Claims to sparsify but cannot say what a kept rank is worth."""

    sparsifies = True


def test_a_sparsifying_compressor_without_an_error_profile_is_refused(tiny_raw, tmp_path,
                                                                      capsys):
    from wirelessfl.cli import main

    tiny_raw["method"] = {"compressor": f"{__name__}:SparsifiesWithoutProfile"}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(tiny_raw))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: method.compressor:") and "error_profile" in err
    assert "\n" not in err


def test_selectors_follow_their_rules():
    from wirelessfl.selection import SELECTORS, SelectionView

    gains = np.array([-100.0, -80.0, -90.0, -70.0, -110.0])
    view = lambda t, n: SelectionView(t, 5, n, gains, np.ones(5))  # noqa: E731
    rng = np.random.default_rng(0)
    rr = SELECTORS.get("round_robin")()
    seen = np.concatenate([rr.select(view(t, 2), rng) for t in range(5)])
    assert np.bincount(seen, minlength=5).tolist() == [2, 2, 2, 2, 2]
    ca = SELECTORS.get("channel_aware")()
    assert ca.select(view(0, 2), rng).tolist() == [1, 3]  # the two strongest
    sel = SELECTORS.get("random")().select(view(0, 3), rng)
    assert len(set(sel.tolist())) == 3 and sel.tolist() == sorted(sel.tolist())
    assert SELECTORS.get("all")().select(view(0, 2), rng).tolist() == [0, 1, 2, 3, 4]


def test_all_selector_with_a_fraction_is_refused(tiny_raw, tmp_path, capsys):
    from wirelessfl.cli import main

    tiny_raw["clients"].update(selection="all", fraction=0.5)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(tiny_raw))
    assert main(["validate", str(p)]) == 2
    assert capsys.readouterr().err.startswith("error: clients.selection:")


def test_round_robin_selection_runs(tiny_raw, tmp_path):
    from wirelessfl.api import run

    tiny_raw["clients"].update(count=4, fraction=0.5, selection="round_robin")
    r = run(tiny_raw, output=None, rounds=2)
    assert r.clients.groupby("round")["client"].apply(list).tolist() == [[0, 1], [2, 3]]
    assert json.dumps(r.summary["method"])  # plain data


def test_the_plugins_page_shows_the_tested_package():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    assert PLUGIN.strip() in page and SETUP.strip() in page
