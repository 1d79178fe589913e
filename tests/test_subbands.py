"""Sub-band gains through the timeline, the planner and the controllers.

A client with bandwidth b on a channel with sub-band gains g_1..g_Q transmits at
``mean_q b log2(1 + c g_q / b)``. The references below are that formula written out;
a flat channel (Q = 1) keeps every number it had (the golden outputs).
"""

from __future__ import annotations

import numpy as np
import pytest

from channels.base import Channel
from channels.law import WindowLaw
from wirelessfl.control.planning import UplinkModel
from wirelessfl.sim.timeline import RoundSchedule, simulate_round

GAINS = np.array([[0.2, 0.9, 1.9], [1.0, 1.0, 1.0]])  # two links, three sub-bands


class ThreeSubbands(Channel):
    """Time-invariant: link k has sub-band gains GAINS[k] for ever."""

    subbands = 3

    def reset(self, n_links, rng):
        self.n_links = n_links

    def gains(self, times_s):
        return np.repeat(GAINS.mean(axis=1)[:, None], len(np.atleast_1d(times_s)), axis=1)

    def subband_gains(self, times_s):
        return np.repeat(GAINS[:, None, :], len(np.atleast_1d(times_s)), axis=1)


def rate(b, c, g):
    return np.mean([b * np.log2(1 + c * x / b) for x in g])


def test_the_timeline_integrates_the_mean_subband_rate():
    ch = ThreeSubbands()
    ch.reset(2, np.random.default_rng(0))
    b, c, bits = 1e5, 4e5, 2e6
    schedule = RoundSchedule(0.0, np.array([0, 1]), 0.1, np.array([0.2, 0.2]),
                             np.array([bits, bits]), np.array([b, b]), np.array([c, c]))
    out = simulate_round(schedule, ch)
    expected = 0.3 + bits / np.array([rate(b, c, GAINS[0]), rate(b, c, GAINS[1])])
    np.testing.assert_allclose(out.finish_s, expected, rtol=1e-12)
    # the same band-mean gain on a flat channel would finish sooner (Jensen)
    flat = 0.3 + bits / (b * np.log2(1 + c * GAINS[0].mean() / b))
    assert out.finish_s[0] > flat * 1.05


def test_the_planner_knows_the_subbands():
    b, c = np.array([1e5, 2e5]), np.array([4e5, 1e6])
    model = UplinkModel(c, WindowLaw.known(GAINS))
    got = model.deliverable_bits(b, np.zeros(2), 1.0)
    expected = [rate(b[k], c[k], GAINS[k]) for k in range(2)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    fin = model.finish_s(b, np.array([3e5, 3e5]), np.zeros(2))
    np.testing.assert_allclose(fin, 3e5 / np.array(expected), rtol=1e-6)


def test_the_block_law_keeps_the_subbands_until_the_block_ends():
    law = WindowLaw.block(GAINS, np.array([0.5, 0.5]), np.array([[0.5, 1.5]]),
                          np.array([[0.5, 0.5]]))
    w = law.weights_s(np.zeros(2), np.ones(2))  # (2, 3 + 2)
    np.testing.assert_allclose(w[:, :3], 0.5 / 3)
    np.testing.assert_allclose(w[:, 3:], 0.25)


def test_a_wideband_run_plans_and_plays_with_the_subbands(tiny_raw):
    """TDL-C with 8 sub-bands against the same channel read flat (1 sub-band), equal
    bandwidth: every upload takes at least as long (the sub-band rate is below the
    flat one at every instant: Jensen), about 8% longer at 10-22 dB, and the planner,
    which knows the sub-bands, predicts it."""
    import wirelessfl

    tiny_raw["rounds"] = 2
    tiny_raw["channel"]["fading"] = {"model": "tdl", "max_doppler_hz": 5.0,
                                     "profile": "C", "delay_spread_s": 1e-6}
    tiny_raw["method"] = {"aggregator": "fedit", "controller": "equal"}
    tiny_raw["radio"]["uplink_bandwidth_hz"] = 20e6
    wide = wirelessfl.run(tiny_raw, output=None)
    tiny_raw["channel"]["fading"]["subbands"] = 1
    flat = wirelessfl.run(tiny_raw, output=None)
    up_wide = wide.clients["realised_upload_s"].to_numpy()
    up_flat = flat.clients["realised_upload_s"].to_numpy()
    assert np.all(up_wide >= up_flat)
    assert np.mean(up_wide / up_flat) > 1.04
    for run, up in ((wide, up_wide), (flat, up_flat)):
        planned = run.clients["planned_upload_s"].to_numpy()
        assert np.median(np.abs(up / planned - 1)) < 0.03


@pytest.mark.parametrize("block_hz", [None, 360e3])
def test_tsfa_holds_its_budget_on_the_wideband_scenario(block_hz):
    """scenarios/wideband.yaml: TDL-C, 8 sub-bands, a budget of 70% of min-max's
    full-rank latency, in continuous bandwidth and in 51 resource blocks of 360 kHz.
    TSFA + SOFT keeps the mean round latency within 5% of it."""
    import wirelessfl

    run = wirelessfl.run("scenarios/wideband.yaml", output=None,
                         radio__resource_block_hz=block_hz)
    budget = run.config["controller"]["latency_budget_s"]
    assert run.metrics["round_latency_s"].mean() <= 1.05 * budget
    assert run.metrics["accuracy"].iloc[-1] > 0.9
    if block_hz is not None:
        assert set(run.clients.groupby("round")["resource_blocks"].sum()) == {51}
