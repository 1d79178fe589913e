"""TSFA's offline pilot: short local training that measures what the structural choice costs.

Before round 0, for every candidate orthogonality weight, the first
``pilot_clients`` clients train ``local_steps`` steps from the initial adapter at the
largest candidate rank (with that weight's penalty). From their adapters, for
every candidate rank r: the energy share beyond the top r ranks (the rank gap),
the FedIT covariance ratio between the pilot clients at rank r, SOFT's squared
truncation error for every kept m, and the expected round latency for every m
(payloads from the compressor, min-max bandwidth planned on the large-scale gains,
rounds played by the discrete-event timeline on the scenario's fading model).
:func:`wirelessfl.control.tsfa.offline_choice` then picks.
"""

from __future__ import annotations

import numpy as np
import torch

from wirelessfl import seeding
from wirelessfl.compression.ranks import importance, site_names
from wirelessfl.control.planning import UplinkModel
from wirelessfl.control.tsfa import Candidate
from wirelessfl.learning.adapter import State
from wirelessfl.learning.aggregators.fedit import covariance_error


def _truncate_rank(state: State, r: int) -> State:
    """The top-r ranks (by importance, per site) of a state, as (A, B) per site."""
    imp = importance(state, state[site_names(state)[0][1]].shape[1])
    out = {}
    for (a, b), s in zip(site_names(state), imp, strict=True):
        idx = torch.topk(s, r).indices
        out[a], out[b] = state[a][idx].double(), state[b][:, idx].double()
    return out


def squared_trunc_errors(state: State, r: int) -> np.ndarray:
    """Mean over sites of ``||BA - B_S A_S||^2 / ||BA||^2`` for SOFT's top m, m = 0..r."""
    top = _truncate_rank(state, r)
    errs = np.zeros(r + 1)
    pairs = site_names(state)
    for a, b in pairs:
        bb, aa = top[b], top[a]
        full = bb @ aa
        norm2 = float((full**2).sum()) or 1.0
        s = bb.norm(dim=0) * aa.norm(dim=1)
        order = torch.argsort(s, descending=True)
        for m in range(r + 1):
            keep = order[:m]
            errs[m] += float(((full - bb[:, keep] @ aa[keep]) ** 2).sum()) / norm2
    return errs / max(len(pairs), 1)


def rank_gap(state: State, r: int) -> float:
    """Share of the update's importance energy beyond the top r ranks, mean over sites."""
    s = importance(state, state[site_names(state)[0][1]].shape[1]) ** 2
    e = torch.sort(s, dim=1, descending=True).values
    total = e.sum(dim=1).clamp_min(1e-300)
    return float((e[:, r:].sum(dim=1) / total).mean())


def expected_latency(sim, bits: np.ndarray, downlink_s: float, n_rounds: int = 20) -> float:
    """Expected round latency of payloads ``bits`` under the channel statistics, seconds.

    The bandwidth is the min-max allocation planned on the channel's stationary law
    (ergodic rates: the statistics, not a realisation); the rounds are played by the
    discrete-event
    timeline on a fresh realisation of the fading model, so an upload averages over
    the coherence blocks it spans, as in the run.
    """
    from wirelessfl.build import expected_round_latency_s

    links = np.arange(len(bits))
    a_s = sim.compute_s + downlink_s
    plan = UplinkModel(sim.cell.uplink_c_hz(links),
                       sim.cell.channel.stationary_law(len(links), 0.0))
    _, b = plan.minmax(a_s, bits, sim.sc.radio.uplink_bandwidth_hz)
    return expected_round_latency_s(sim.cell, sim.compute_s, bits, downlink_s, n_rounds,
                                    seed=sim.sc.seed + 1, bandwidth_hz=b)


def run_pilot(sim, ranks: list[int], lambdas: list[float], n_clients: int,
              latency_rounds: int = 20) -> list[Candidate]:
    """Measure every (rank, lambda) candidate; ``sim`` is a Simulation built at max(ranks).

    ``n_clients`` clients train once per lambda; each (rank, kept ranks) latency is the
    mean of ``latency_rounds`` timeline rounds (:func:`expected_latency`).
    """
    from wirelessfl.compression.soft import orthogonality_penalty

    sc = sim.sc
    k_pilot = list(range(min(n_clients, sc.clients.count)))
    n = sc.clients.count
    links = np.arange(n)
    dl = sim.cell.broadcast_time_s(sim.broadcast_bits(sim.initial_state), links, 0.0)
    q = sc.radio.bits_per_value
    latency = {}
    for r in ranks:
        latency[r] = np.array([expected_latency(sim, np.full(n, float(
            sim.compressor.payload_bits(sim.shapes, r, q, max(m, 1)))), dl, latency_rounds)
            for m in range(r + 1)])

    cands = []
    for lam in lambdas:
        sim.trainer.regularizer = (lambda m, w=lam: w * orthogonality_penalty(m)) if lam else None
        states = [sim.trainer.train(k, sim.shards.train[k], sim.initial_state,
                                    seeding.rng(sc.seed, "controller", 2, k),
                                    seeding.int_seed(sc.seed, "controller", 3, k)).state
                  for k in k_pilot]
        for r in ranks:
            cov = 0.0
            if len(states) > 1:
                tops = [_truncate_rank(s, r) for s in states]
                w = torch.full((len(tops),), 1.0 / len(tops), dtype=torch.float64)
                ratios = []
                for a, b in site_names(states[0]):
                    cv, full = covariance_error([t[b] for t in tops], [t[a] for t in tops], w)
                    ratios.append(cv / full if full > 0 else 0.0)
                cov = float(np.mean(ratios))
            cands.append(Candidate(
                rank=r, lambda_orth=float(lam),
                rank_gap=float(np.mean([rank_gap(s, r) for s in states])),
                covariance=cov,
                trunc_err=np.mean([squared_trunc_errors(s, r) for s in states], axis=0),
                latency_s=latency[r]))
    return cands
