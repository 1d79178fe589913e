"""The planner's window laws against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import exp1, j0

from channels import CHANNELS
from channels.law import WindowLaw, equal_probability_nodes, exponential_nodes
from wirelessfl.control import CONTROLLERS
from wirelessfl.control.planning import UplinkModel, instantaneous
from wirelessfl.control.synthetic import SyntheticCell, run_rounds


@pytest.mark.parametrize("snr_db", [-20, -10, 0, 10, 20, 30])
def test_rayleigh_nodes_give_the_ergodic_capacity(snr_db):
    snr = 10 ** (snr_db / 10)
    g, p = exponential_nodes()
    exact = np.exp(1 / snr) * exp1(1 / snr) / np.log(2)
    assert float(p @ np.log2(1 + snr * g)) == pytest.approx(exact, rel=5e-3)
    assert float(p @ g) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize(("name", "params"), [
    ("rayleigh", {}), ("rician", {"k_factor_db": 7}), ("nakagami", {"m": 3}),
    ("jakes", {"max_doppler_hz": 10}), ("awgn", {}), ("tdl", {"max_doppler_hz": 10}),
    ("cdl", {"max_doppler_hz": 10, "subcarriers": 16}),
])
def test_every_model_has_a_unit_mean_stationary_law(name, params):
    ch = CHANNELS.get(name).from_dict(params)
    ch.reset(3, np.random.default_rng(0))
    g, p = ch.marginal_nodes() if name != "awgn" else (np.ones((1, 1)), np.ones((1, 1)))
    assert np.allclose(p.sum(axis=-1), 1.0)
    assert float((g * p).sum()) == pytest.approx(1.0, abs=0.01)


def test_block_law_keeps_the_measured_gain_until_its_block_ends():
    ch = CHANNELS.get("rayleigh").from_dict({"coherence_time_s": 0.1})
    ch.reset(2, np.random.default_rng(0))
    law = ch.window_law(np.array([0.01, 3.0]), 0.25, 0.25)  # block [0.2, 0.3)
    w = law.weights_s(np.full(2, 0.25), np.full(2, 1.0))
    known = np.isneginf(law.start_s)
    assert np.allclose(w[known], 0.05)  # 50 ms of the measured gain
    assert np.allclose(w[~known].reshape(2, -1).sum(axis=1), 0.70)  # then the law
    stale = ch.window_law(np.array([0.01, 3.0]), 0.15, 0.25)  # measured a block earlier
    assert np.all(stale.start_s >= 0.25)


@pytest.mark.parametrize("lag_fd", [0.1, 0.3, 0.7, 1.5])
def test_jakes_conditional_mean_is_clarkes(lag_fd):
    """E[g(s) | g0] = rho^2 g0 + 1 - rho^2 with rho = J0(2 pi f_d s)."""
    f_d = 10.0
    ch = CHANNELS.get("jakes").from_dict({"max_doppler_hz": f_d})
    ch.reset(3, np.random.default_rng(0))
    g0 = np.array([0.05, 1.0, 4.0])
    law = ch.window_law(g0, 0.0, 0.0)
    s = lag_fd / f_d
    on = (law.start_s <= s) & (s < law.end_s)
    mean = (law.gains * law.probs * on).sum(axis=1)
    mid = 0.5 * (law.start_s[on].reshape(3, -1)[:, 0] + law.end_s[on].reshape(3, -1)[:, 0])
    rho2 = j0(2 * np.pi * f_d * mid) ** 2
    assert np.allclose(mean, rho2 * g0 + 1 - rho2, rtol=0.03)


def test_equal_probability_nodes_are_bin_means():
    x = np.arange(1, 17, dtype=float)
    g, p = equal_probability_nodes(x, 4)
    assert g.tolist() == [2.5, 6.5, 10.5, 14.5] and np.allclose(p, 0.25)


def test_deliverable_bits_and_finish_time_are_inverse():
    rng = np.random.default_rng(1)
    n = 6
    c = 10 ** rng.uniform(6, 9, n)
    g, p = exponential_nodes()
    law = WindowLaw.block(rng.exponential(size=n), np.full(n, 0.02), g[None], p[None])
    up = UplinkModel(c, law)
    a, b, s = rng.uniform(0, 0.05, n), rng.uniform(1e5, 1e6, n), rng.uniform(1e4, 1e6, n)
    fin = up.finish_s(b, s, a)
    assert np.allclose(up.deliverable_bits(b, a, fin), s, rtol=1e-9)
    need = up.needed_bandwidth(s, a, fin, 1e9)
    assert np.allclose(need, b, rtol=1e-6)
    # one node that holds for ever: the closed form (tau - a) b log2(1 + c g / b)
    one = instantaneous(c, np.ones(n))
    assert np.allclose(one.finish_s(b, s, a), a + s / (b * np.log2(1 + c / b)))


def test_planning_is_unbiased_and_first_block_planning_is_not():
    """Equal shares on multi-block uploads: mean realised / planned within 3% and a
    small spread with the window law; trusting the round-start gain for the whole
    upload spreads the ratio over a factor of about 1.8 (rms log ratio 0.58)."""
    def cell(csi):
        return SyntheticCell(n=4, rank=4, bandwidth_hz=2e6, seed=3, coherence_time_s=0.01,
                             per_rank_bits=2e5, compute_range_s=(0.01, 0.03), csi=csi)

    good = run_rounds(CONTROLLERS.get("equal")(), cell("auto"), 300, None)
    bad = run_rounds(CONTROLLERS.get("equal")(), cell("instantaneous"), 300, None)
    def spread(out):
        return float(np.sqrt(np.mean(np.log(out["latency_s"] / out["planned_s"]) ** 2)))

    assert abs(np.mean(good["latency_s"] / good["planned_s"]) - 1) < 0.03
    assert spread(good) < 0.1 < 0.3 < spread(bad)


@pytest.mark.parametrize("k_db", [-3.0, 0.0, 5.0, 12.0])
def test_rician_planning_nodes_are_exact_bin_means_with_mean_one(k_db):
    from channels.law import rician_nodes
    from channels.rician import BlockRician, RicianParams

    k = 10 ** (k_db / 10)
    g, p = rician_nodes(k)
    assert float((g * p).sum()) == pytest.approx(1.0, abs=1e-12)  # the sample gave 0.9968
    assert np.all(np.diff(g) > 0)
    draws = BlockRician(RicianParams(k_factor=k)).draw(np.random.default_rng(7), 40_000, 25)
    mc = np.sort(draws.ravel()).reshape(len(g), -1).mean(axis=1)  # 1e6 draws, 16 bins
    assert g == pytest.approx(mc, rel=0.01, abs=0.003)
    assert BlockRician(RicianParams(k_factor=k)).marginal_nodes()[0][0] == pytest.approx(g)


def test_gamma_planning_nodes_reduce_to_the_exponential_law_and_match_draws():
    from channels.law import exponential_nodes, gamma_nodes
    from channels.nakagami import BlockNakagami, NakagamiParams

    assert gamma_nodes(1.0, 1.0)[0] == pytest.approx(exponential_nodes()[0], abs=1e-12)
    for m in (0.5, 2.0, 5.0):
        g, p = gamma_nodes(m, 1 / m)
        assert float((g * p).sum()) == pytest.approx(1.0, abs=1e-12)
        draws = BlockNakagami(NakagamiParams(m=m)).draw(np.random.default_rng(8), 40_000, 25)
        mc = np.sort(draws.ravel()).reshape(len(g), -1).mean(axis=1)
        assert g == pytest.approx(mc, rel=0.01, abs=0.003)
