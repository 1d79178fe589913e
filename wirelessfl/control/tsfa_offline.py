"""TSFA's offline stage: a pilot measures each structural choice, a surrogate picks one.

Before round 0, for every candidate orthogonality weight, the first
``pilot_clients`` clients train ``local_steps`` steps from the initial adapter at the
largest candidate rank (with that weight's penalty). From their adapters, for
every candidate rank r: the energy share beyond the top r ranks (the rank gap),
the FedIT covariance ratio between the pilot clients at rank r, SOFT's squared
truncation error for every kept m, and the expected round latency for every m
(payloads from the compressor, min-max bandwidth planned on the channel's
stationary law, rounds played by the discrete-event timeline on the scenario's
fading model). :func:`offline_choice` then picks the candidate minimising the
convergence-bound surrogate under the latency budget.

:func:`prepare` is what the controller's ``prepare`` hook runs: it checks the
candidates against the scenario, builds the pilot simulation, and returns the
scenario the run is built with (its LoRA rank and SOFT's ``lambda_orth`` set to the
choice) and the candidate table (``tsfa_offline.csv``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wirelessfl import seeding
from wirelessfl.compression.ranks import importance, site_names
from wirelessfl.control.planning import stationary
from wirelessfl.errors import ScenarioError
from wirelessfl.learning.adapter import State
from wirelessfl.learning.aggregators.fedit import covariance_error
from wirelessfl.learning.client import TrainJob
from wirelessfl.sim.expected import expected_round_latency_s


@dataclass
class Candidate:
    """A structural choice (rank r, orthogonality weight) and what the pilot measured.

    Attributes
    ----------
    rank : int
    lambda_orth : float
    rank_gap : float
        Share of the pilot update's energy beyond its top r ranks (what rank r
        cannot hold), in [0, 1].
    covariance : float
        FedIT covariance ratio ``||C||_F / ||sum p B A||_F`` between the pilot clients
        at rank r (0 with one pilot client).
    trunc_err : ndarray, shape (r + 1,)
        Squared relative truncation error of SOFT keeping m ranks, m = 0..r.
    latency_s : ndarray, shape (r + 1,)
        Expected round latency with m ranks kept and min-max bandwidth, seconds.
    """

    rank: int
    lambda_orth: float
    rank_gap: float
    covariance: float
    trunc_err: np.ndarray
    latency_s: np.ndarray


def offline_choice(cands: list[Candidate], budget_s: float, w_rank: float, w_sparse: float,
                   w_cov: float) -> tuple[Candidate, list[dict[str, float]]]:
    """The candidate minimising the convergence-bound surrogate under the budget.

    For each candidate, ``m_bar`` is the largest kept rank whose expected latency fits
    ``budget_s``, and ``J = w_rank * rank_gap + w_sparse * trunc_err[m_bar] +
    w_cov * covariance``. Candidates with no feasible m are infeasible; if none is
    feasible, the one with the smallest expected latency at m = 1 is chosen.
    Returns the choice and one table row per candidate.
    """
    rows = []
    best, best_j = None, math.inf
    for c in cands:
        fits = [m for m in range(1, c.rank + 1) if c.latency_s[m] <= budget_s]
        m_bar = max(fits) if fits else 0
        j = (w_rank * c.rank_gap + w_sparse * float(c.trunc_err[m_bar]) + w_cov * c.covariance
             if fits else math.inf)
        rows.append({"rank": c.rank, "lambda_orth": c.lambda_orth, "rank_gap": c.rank_gap,
                     "covariance": c.covariance, "m_bar": m_bar,
                     "trunc_err_at_m_bar": float(c.trunc_err[m_bar]) if fits else math.nan,
                     "latency_full_s": float(c.latency_s[c.rank]),
                     "latency_m1_s": float(c.latency_s[1]), "surrogate": j})
        if j < best_j:
            best, best_j = c, j
    if best is None:
        best = min(cands, key=lambda c: float(c.latency_s[1]))
    for row, c in zip(rows, cands, strict=True):
        row["chosen"] = float(c is best)
    return best, rows


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


def expected_latency(pilot: Any, bits: np.ndarray, downlink_s: float,
                     n_rounds: int = 20) -> float:
    """Expected round latency of payloads ``bits`` under the channel statistics, seconds.

    ``pilot`` is the pilot's :class:`wirelessfl.build.Components`; its clients, or a
    lazy population's sample (:meth:`LazyCell.sample`), send ``bits``. The bandwidth is
    the min-max allocation planned on the channel's stationary law (ergodic rates:
    the statistics, not a realisation); the rounds are played by the discrete-event
    timeline on a fresh realisation of the fading model, so an upload averages over
    the coherence blocks it spans, as in the run.
    """
    cell, ids = pilot.cell.sample(pilot.n_selected, pilot.scenario.seed)
    compute_s = pilot.sizes.compute_s[ids]
    _, b = stationary(cell, np.arange(len(bits))).minmax(
        compute_s + downlink_s, bits, pilot.scenario.radio.uplink_bandwidth_hz)
    return expected_round_latency_s(cell, compute_s, bits, downlink_s, n_rounds,
                                    seed=pilot.scenario.seed + 1, bandwidth_hz=b)


def pilot_jobs(seed: int, clients: list[int], start: State) -> list[TrainJob]:
    """The pilot's local training of ``clients`` from ``start``, on streams of its own
    (the controller's, not any round's)."""
    return [TrainJob(k, start, seeding.seed_sequence(seed, "controller", 2, k),
                     seeding.seed_sequence(seed, "controller", 3, k)) for k in clients]


def run_pilot(pilot: Any, ranks: list[int], lambdas: list[float], n_clients: int,
              latency_rounds: int = 20) -> list[Candidate]:
    """Measure every (rank, lambda) candidate on the pilot's components (built at the
    largest candidate rank).

    ``n_clients`` clients train once per lambda; each (rank, kept ranks) latency is the
    mean of ``latency_rounds`` timeline rounds (:func:`expected_latency`).
    """
    from wirelessfl.compression.soft import penalty

    sc, bench = pilot.scenario, pilot.bench
    k_pilot = list(range(min(n_clients, sc.clients.count)))
    cell, ids = pilot.cell.sample(pilot.n_selected, sc.seed)
    n = len(ids)
    dl = pilot.sizes.initial_broadcast_s(cell, pilot.aggregator, bench.initial_state)
    q = sc.radio.bits_per_value
    latency = {}
    for r in ranks:
        latency[r] = np.array([expected_latency(pilot, np.full(n, float(
            pilot.compressor.payload_bits(bench.shapes, r, q, max(m, 1)))), dl, latency_rounds)
            for m in range(r + 1)])

    cands = []
    for lam in lambdas:
        reg = ((lambda p, w=lam: w * penalty(p)) if lam
               else (lambda p: torch.zeros(())))  # not None: that means the default
        states = [u.state for u in bench.train(pilot_jobs(sc.seed, k_pilot,
                                                          bench.initial_state), reg)]
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


def check(scenario: Any, params: Any, has_lambda: bool) -> None:
    """The offline options against the scenario; one-line errors naming the key."""
    key = "method.controller_options.rank_candidates"
    if scenario.model.adapter != "lora":
        raise ScenarioError(key, f"the offline rank choice needs LoRA; model.adapter is "
                            f"{scenario.model.adapter!r}")
    lora = scenario.model.lora
    if lora.client_ranks is not None or lora.rank_by_device is not None:
        raise ScenarioError(key, "the offline rank choice needs one structural rank; drop "
                            "model.lora.client_ranks / rank_by_device")
    if any(r < 1 for r in params.rank_candidates):
        raise ScenarioError(key, "ranks must be >= 1")
    if params.lambda_candidates is not None and not has_lambda:
        raise ScenarioError("method.controller_options.lambda_candidates",
                            f"compressor {scenario.method.compressor!r} has no lambda_orth; "
                            "use soft")


def prepare(scenario: Any, params: Any, build: Callable[[Any], Any]
            ) -> tuple[Any, list[dict[str, float]]]:
    """Run the pilot and return (the scenario to run, the candidate table).

    ``build(scenario)`` builds components (the pilot's, at the largest candidate
    rank); the caller builds the run's own components from the returned scenario.
    """
    ranks = sorted(set(params.rank_candidates))
    pilot_sc = scenario.model_copy(deep=True)
    pilot_sc.model.lora.rank = max(ranks)
    pilot = build(pilot_sc)
    own_lambda = getattr(pilot.compressor.params, "lambda_orth", None)
    lambdas = params.lambda_candidates or [own_lambda or 0.0]
    cands = run_pilot(pilot, ranks, lambdas, params.pilot_clients,
                      params.pilot_latency_rounds)
    choice, rows = offline_choice(cands, scenario.controller.latency_budget_s,
                                  params.weight_rank, params.weight_sparse, params.weight_cov)
    final = scenario.model_copy(deep=True)
    final.model.lora.rank = choice.rank
    if own_lambda is not None:
        final.method.compressor_options = {**final.method.compressor_options,
                                           "lambda_orth": choice.lambda_orth}
    return final, rows
