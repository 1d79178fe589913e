"""What every column of ``metrics.csv`` and ``clients.csv`` means, with its unit.

``docs/columns.md`` is generated from these tables (``python -m wirelessfl.docs_gen
--columns``); a test checks that every column a run writes is described here, and
that the page is up to date.
"""

from __future__ import annotations

#: ``metrics.csv``: one row per round
METRICS: dict[str, str] = {
    "round": "round index t, from 0",
    "sim_time_s": "simulated time at the end of the round, s",
    "round_latency_s": "the round's realised latency: broadcast, compute and the last "
                       "upload the server waited for, s",
    "planned_latency_s": "the controller's planned latency of its slowest client, s",
    "planned_round_latency_s": "when the round plans by expected finish "
                               "(channel.csi.planning), the expected latest finish over "
                               "the sample paths, s",
    "avg_latency_s": "mean of round_latency_s over rounds 0..t, s",
    "downlink_s": "broadcast time of the global adapter, s",
    "uplink_bits": "bits the clients sent this round",
    "cum_uplink_bits": "uplink_bits summed over rounds 0..t",
    "downlink_bits": "bits of the broadcast",
    "cum_downlink_bits": "downlink_bits summed over rounds 0..t",
    "selected": "clients selected this round",
    "received": "updates the server received in time",
    "dropped": "selected clients whose update was not aggregated (see clients.csv "
               "drop_reason)",
    "queue_s": "the virtual latency queue Q(t) the controller saw at the round start "
               "(Q(t+1) = max(Q(t) + T(t) - budget, 0)), s; 0 without a budget",
    "tx_energy_j": "clients' transmit energy this round, J",
    "compute_energy_j": "clients' compute energy this round, J",
    "train_loss": "mean of the clients' local training losses",
    "accuracy": "test accuracy of the global model (classification), NaN when not "
                "evaluated this round",
    "loss": "test loss of the global model (cross-entropy; causal LMs: per target token)",
    "perplexity": "held-out perplexity, exp(loss) (causal LMs)",
    "rougeL": "ROUGE-L F of greedy completions on the held-out sample (eval.generate)",
    "exact_match": "share of greedy completions equal to the reference (eval.generate)",
    "personal_accuracy": "mean accuracy of the clients' personalised models on their own "
                         "test shards (FedTree)",
    "personal_perplexity": "FedTree on a causal LM: mean held-out perplexity of the "
                           "clients' personalised models",
    "fedit_cov_rel": "FedIT: ||sum_k p_k (B_k - B)(A_k - A)||_F / ||sum_k p_k B_k A_k||_F, "
                     "the averaging's covariance error, mean over adapted matrices",
    "downlink_rank_mean": "FLoRA/FLoRIST: rank of the broadcast stacked adapter, mean "
                          "over sites",
    "florist_rank": "FLoRIST: ranks kept by singular-value thresholding, mean over sites",
    "florist_dropped_energy": "FLoRIST: share of the aggregate's energy (sum s^2) "
                              "thresholded away, mean over sites",
    "fedtree_clusters_mean": "FedTreeLoRA: clusters per layer of the tree, mean",
    "fedtree_clusters_deepest": "FedTreeLoRA: clusters at the deepest layer",
    "orth_residual": "SOFT: ||offdiag(G)||_F / ||G||_F of G = A A^T and B^T B, mean over "
                     "sites and clients (0: orthogonal ranks)",
    "trunc_err": "||C~ - C||_F / ||C||_F of the server's rebuild C~ from the sent ranks of "
                 "the client's change C, mean over clients",
    "subset_oracle_err": "trunc_err of the best subset of as many ranks (NaN above 16)",
    "svd_trunc_err": "||C - C_m||_F / ||C||_F for the best rank-m matrix C_m (SVD): a "
                     "bound no rank choice beats",
    "tsfa_solves": "TSFA: per-deadline solves this round",
    "tsfa_fallback": "TSFA: 1 when no deadline solved and it fell back to min-max",
    "tsfa_keep_ratio": "TSFA: mean share of ranks sent, m_k / r_k",
    "tsfa_budget_unreachable": "TSFA: 1 when one rank each at min-max bandwidth still "
                               "misses the budget",
    "tsfa_scheduled": "TSFA-sched: clients scheduled this round",
    "tsfa_participation_queue_max": "TSFA-sched: largest participation queue Z_k",
    "ideal_bandwidth_multiple": "ideal: how many times the band it hands out (K)",
}

#: ``clients.csv``: one row per selected client per round
CLIENTS: dict[str, str] = {
    "round": "round index t",
    "client": "client id k",
    "num_samples": "the client's training examples (its aggregation weight)",
    "train_loss": "mean local training loss",
    "distance_m": "distance to the base station at the round start, m",
    "gain_db": "large-scale gain (path loss and shadowing), dB",
    "snr_db": "SNR over the client's bandwidth at the planner's CSI, "
              "10 log10(c_k / b_k), dB",
    "bandwidth_hz": "uplink bandwidth b_k, Hz",
    "resource_blocks": "whole OFDMA resource blocks (with radio.resource_block_hz)",
    "rank": "the client's LoRA rank r_k",
    "keep_ranks": "ranks sent m_k (r_k when all are)",
    "payload_bits": "uplink payload, bits (0 when nothing is sent)",
    "compute_s": "local computation time, s",
    "planned_latency_s": "the controller's planned finish after the round start, s",
    "planned_upload_s": "planned_latency_s less broadcast and compute, s",
    "realised_upload_s": "realised upload time, s (NaN when not received)",
    "realised_latency_s": "realised finish after the round start, s (NaN when not "
                          "received)",
    "tx_energy_j": "transmit energy, J",
    "compute_energy_j": "compute energy, J",
    "received": "whether the server aggregated the update",
    "drop_reason": "empty when received; deadline, outage, unscheduled, downlink_outage "
                   "or non_finite_update",
    "orth_residual": "SOFT: the client's orthogonality residual (see metrics.csv)",
    "trunc_err": "the client's truncation error (see metrics.csv)",
    "subset_oracle_err": "the client's best-subset error (see metrics.csv)",
    "svd_trunc_err": "the client's SVD bound (see metrics.csv)",
}


def markdown() -> str:
    """``docs/columns.md``."""
    out = ["# Result columns", "",
           "Generated from `wirelessfl/columns.py` by `python -m wirelessfl.docs_gen "
           "--columns`; a test checks that every column a run writes is here.", "",
           "## `metrics.csv` (one row per round)", "", "| column | meaning |", "|---|---|"]
    out += [f"| `{k}` | {v} |" for k, v in METRICS.items()]
    out += ["", "## `clients.csv` (one row per selected client per round)", "",
            "| column | meaning |", "|---|---|"]
    out += [f"| `{k}` | {v} |" for k, v in CLIENTS.items()]
    return "\n".join(out) + "\n"
