"""Batched multi-client training: the same adapters as training one client after another.

Oracle: the sequential path (``LocalTrainer.train``, one client at a time on the
peft model's own forward), which shares no code with the stacked forward. Both run
with the models' own dropout (tiny-bert: 0.1 hidden and attention) and LoRA dropout
0.1: each client's masks come from its own streams, so the two paths agree to float
rounding.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from tests.conftest import TINY
from wirelessfl.build import Components, build_components
from wirelessfl.compression.soft import penalty
from wirelessfl.learning import batched
from wirelessfl.learning.client import TrainJob, round_job
from wirelessfl.scenario import Scenario

RANKS = [2, 4, 4, 1, 3, 4]


def build(aggregator="fedit", compressor="soft", ranks=RANKS, cap=None, samples=300,
          lora_dropout=0.1, model=None, no_dropout=False, **compressor_options) -> Components:
    raw = copy.deepcopy(TINY)
    if model is not None:
        raw["model"] = copy.deepcopy(model)
    raw["clients"].update(count=len(ranks), local_steps=4, batch_size=8, learning_rate=0.02)
    raw["model"]["lora"] = {"rank": max(ranks), "alpha": 8, "dropout": lora_dropout,
                            "client_ranks": list(ranks)}
    raw["data"]["synthetic"]["num_samples"] = samples
    raw["method"] = {"aggregator": aggregator, "compressor": compressor,
                     "compressor_options": compressor_options}
    raw["compute"] = {"torch_threads": 1, "max_batched_clients": cap}
    torch.set_num_threads(1)
    c = build_components(Scenario.model_validate(raw))
    if no_dropout:
        for m in c.bench.model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
    return c


def jobs_of(c: Components, round_: int = 0) -> list[TrainJob]:
    out = []
    for k, r in enumerate(c.bench.ranks.tolist()):
        gen = torch.Generator().manual_seed(100 + k)
        start = c.aggregator.client_state(c.bench.initial_state, k, r, gen)
        out.append(round_job(c.scenario.seed, k, round_, start, r))
    return out


def assert_same_updates(seq, bat, tol=1e-5):
    assert [u.client_id for u in seq] == [u.client_id for u in bat]
    for a, b in zip(seq, bat, strict=True):
        assert a.num_samples == b.num_samples and a.rank == b.rank
        assert a.state.keys() == b.state.keys()
        for name in a.state:
            torch.testing.assert_close(b.state[name], a.state[name], atol=tol, rtol=0)
        assert b.train_loss == pytest.approx(a.train_loss, abs=tol)


@pytest.mark.parametrize("aggregator", ["fedit", "ffa", "flora", "florist", "fedtree"])
def test_batched_training_gives_the_sequential_adapters(aggregator):
    """Heterogeneous ranks, SOFT's penalty, several steps, groups of 4 + 2 clients."""
    c = build(aggregator, "soft", cap=4, lambda_orth=0.5)
    bench = c.bench
    assert bench.clients_per_pass == 4 and bench.batch_note is None
    jobs = jobs_of(c)
    seq = [bench.train_one(j) for j in jobs]
    moved = max(float((u.state[n] - j.start[n]).abs().max())
                for u, j in zip(seq, jobs, strict=True) for n in u.state)
    assert moved > 1e-2  # training did something worth comparing
    bat = [u for i in range(0, 6, 4) for u in bench.train_group(jobs[i : i + 4])]
    assert_same_updates(seq, bat)
    # a lower-rank client's unused ranks stay exactly zero in both paths
    b_name = next(n for n in bat[3].state if ".lora_B." in n)
    assert float(bat[3].state[b_name][:, 1:].abs().max()) == 0.0


def test_equal_ranks_without_penalty_and_a_shard_smaller_than_the_batch():
    """Small shards (fewer rows than the batch) are padded at weight zero."""
    c = build("fedit", "none", ranks=[3, 3, 3], samples=40)
    shards = [len(s) for s in c.bench.shards.train]
    assert min(shards) < c.scenario.clients.batch_size < max(shards)
    jobs = jobs_of(c)
    assert_same_updates([c.bench.train_one(j) for j in jobs], c.bench.train_group(jobs))


def test_the_penalty_with_a_client_axis_is_each_clients_penalty():
    gen = torch.Generator().manual_seed(0)
    states = [{"m.lora_A.default.weight": torch.randn(3, 7, generator=gen),
               "m.lora_B.default.weight": torch.randn(5, 3, generator=gen),
               "n.lora_A.default.weight": torch.randn(3, 4, generator=gen),
               "n.lora_B.default.weight": torch.randn(6, 3, generator=gen)} for _ in range(4)]
    stacked = {n: torch.stack([s[n] for s in states]) for n in states[0]}

    def by_hand(s):  # squared off-diagonal Gram entries, written out
        total = 0.0
        for site in ("m", "n"):
            a, b = s[f"{site}.lora_A.default.weight"], s[f"{site}.lora_B.default.weight"]
            for g in (a @ a.T, b.T @ b):
                total += sum(float(g[i, j]) ** 2 for i in range(3) for j in range(3) if i != j)
        return total / 2

    got = penalty(stacked)
    assert got.shape == (4,)
    for k in range(4):
        assert float(got[k]) == pytest.approx(by_hand(states[k]), rel=1e-5)
        assert float(penalty(states[k])) == pytest.approx(by_hand(states[k]), rel=1e-5)


def test_the_probe_catches_a_batched_forward_that_mixes_clients(monkeypatch):
    bench = build("fedit", "none", ranks=[2, 2]).bench
    args = (bench.model, bench.initial_state, bench.data.input_ids, bench.data.attention_mask)
    assert batched.probe(*args) is None

    def wrong_head(w, bias, k):  # every client gets client 0's head
        return lambda x, *a, **kw: torch.nn.functional.linear(x, w[0], bias[0])

    monkeypatch.setattr(batched, "_head_forward", wrong_head)
    assert "differ" in batched.probe(*args)


def test_a_model_it_cannot_batch_trains_one_by_one_and_says_why():
    raw = copy.deepcopy(TINY)
    raw["model"]["lora"]["target_modules"] = ["query", "word_embeddings"]
    bench = build_components(Scenario.model_validate(raw)).bench
    assert bench.clients_per_pass == 1
    assert "word_embeddings" in bench.batch_note and "one by one" in bench.batch_note


def test_chunk_size_rules():
    c = build("fedit", "none", ranks=[2, 2])
    model = c.bench.model
    cpu = torch.device("cpu")
    tokens = c.scenario.clients.batch_size * c.scenario.model.max_length
    h = batched.hidden_size(model)
    assert h == 64  # tiny-bert
    assert batched.clients_per_pass(model, 8, 12, cpu, None) == min(
        4096 // tokens, 786_432 // (tokens * h))
    assert batched.clients_per_pass(model, 8, 12, cpu, 3) == 3
    assert batched.clients_per_pass(model, 4096, 64, cpu, None) == 1
    per = batched.bytes_per_client(model, 8, 12)
    assert per > 16 * sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_a_run_with_batching_matches_one_without(tmp_path):
    from wirelessfl import api

    raw = copy.deepcopy(TINY)
    raw["model"]["lora"]["dropout"] = 0.0
    raw["method"] = {"compressor": "soft"}
    on = api.run(raw, output=None, compute__torch_threads=1)
    off = api.run(raw, output=None, compute__torch_threads=1, compute__batch_clients=False)
    assert on.summary["clients_per_pass"] > 1 and off.summary["clients_per_pass"] == 1
    # the base model's dropout draws different masks in the two paths: the runs agree
    # in every simulated time and bit count, and closely in accuracy
    for col in ("round_latency_s", "uplink_bits", "received"):
        assert on.metrics[col].tolist() == off.metrics[col].tolist()
    assert on.metrics["train_loss"].tolist() == pytest.approx(
        off.metrics["train_loss"].tolist(), rel=0.05)
    again = api.run(raw, output=None, compute__torch_threads=1)
    assert again.metrics.equals(on.metrics)


def test_minilm_batches_exactly_with_its_own_dropout():
    """The pretrained encoder (hidden and attention dropout 0.1) and LoRA dropout 0.1:
    train losses to 1e-5; adapter values to 2 % of an AdamW step (at most about the
    learning rate) per local step, since a value whose gradient is near zero turns float
    rounding into a sizeable normalised step."""
    c = build("fedit", "soft", ranks=[2, 4, 4], cap=3, samples=60, lambda_orth=0.2,
              model={"name": "minilm-l6", "max_length": 12})
    bench = c.bench
    assert bench.clients_per_pass == 3
    jobs = jobs_of(c)
    seq = [bench.train_one(j) for j in jobs]
    bat = bench.train_group(jobs)
    lr, steps = c.scenario.clients.learning_rate, c.scenario.clients.local_steps
    assert_same_updates(seq, bat, tol=0.02 * lr * steps)
    for a, b in zip(seq, bat, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-5)


@pytest.mark.slow
def test_smollm2_stacked_gives_the_sequential_losses():
    """SmolLM2 (30 layers, 49,152-wide logits, LoRA dropout 0.1) through the stacked
    path (forced: on a CPU the rule trains it one by one): train losses to 1e-5. Its
    adapter values differ by up to 2.4e-3 after 4 steps at learning rate 0.02 (measured,
    with or without dropout): float rounding of the deep model's gradients, amplified
    where AdamW normalises near-zero ones into full-size steps."""
    c = build("fedit", "none", ranks=[4, 4, 4], cap=3, samples=60, model={
        "name": "smollm2-135m", "max_length": 12})
    bench = c.bench
    jobs = jobs_of(c)
    seq = [bench.train_one(j) for j in jobs]
    bat = bench.trainer.train_many(jobs, [bench.shards.train[j.client] for j in jobs])
    for a, b in zip(seq, bat, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-5)
