"""Bring your own model and data: a local Hugging Face folder, CSV / JSONL / datasets files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from wirelessfl.cli import main

WORDS = ["goal", "match", "team", "chip", "code", "robot", "bread", "soup", "salt",
         "the", "a", "of", "and", "today", "new", "big"]
LABELS = {"sport": WORDS[0:3], "tech": WORDS[3:6], "food": WORDS[6:9]}


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A 1-layer BERT and its WordPiece tokenizer saved as a Hugging Face folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("my-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(d / "vocab.txt")).save_pretrained(str(d))
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(str(d))
    return d


def texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = list(LABELS)[i % 3]
        words = list(rng.choice(WORDS[9:], 5)) + list(rng.choice(LABELS[label], 2))
        rng.shuffle(words)
        out.append((" ".join(words), label))
    return out


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    import csv

    p = tmp_path_factory.mktemp("data") / "news.csv"
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["body", "topic"])
        w.writerows(texts(150))
    return p


def scenario(tiny_raw, tmp_path, model: dict, data: dict) -> dict:
    tiny_raw["model"] = {**model, "max_length": 12, "lora": {"rank": 2, "alpha": 4}}
    tiny_raw["data"] = {**data, "partition": {"scheme": "iid"}}
    tiny_raw["rounds"] = 2
    tiny_raw["output"] = {"dir": str(tmp_path / "run"), "plots": False}
    return tiny_raw


def test_a_local_hf_model_and_a_csv_file_run(tiny_raw, tmp_path, hf_folder, csv_file,
                                            monkeypatch):
    import wirelessfl
    from wirelessfl.learning import tokens as tokens_mod

    monkeypatch.setenv("WIRELESSFL_CACHE", str(tmp_path / "cache"))
    raw = scenario(tiny_raw, tmp_path, {"name": "hf", "options": {"path": str(hf_folder)}},
                   {"name": "csv", "options": {"path": str(csv_file), "text_column": "body",
                                               "label_column": "topic"}})
    r = wirelessfl.run(raw)
    assert r.finished and len(r.metrics) == 2
    assert r.summary["label_names"] == ["food", "sport", "tech"]
    assert r.summary["base_model"]["options"] == {"path": str(hf_folder)}
    assert len(list((tmp_path / "cache" / "tokens").glob("*.pt"))) == 1
    model = r.model()  # base rebuilt from the recipe, adapter loaded
    assert model.base_model.model.encoder.config.hidden_size == 32

    # the second run reads the tokenised set from the cache: identical metrics
    def no_tokenize(*a, **k):
        raise AssertionError("tokenised again")

    monkeypatch.setattr(tokens_mod, "tokenize_any", no_tokenize)
    again = wirelessfl.run(raw, output=None)
    cols = ["round", "sim_time_s", "accuracy", "train_loss"]
    assert again.metrics[cols].equals(r.metrics[cols])


def test_jsonl_and_saved_datasets_give_the_same_data(tmp_path, csv_file):
    import datasets

    from wirelessfl.learning.data import DATASETS

    rows = texts(30)
    jl = tmp_path / "d.jsonl"
    jl.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    ds = datasets.Dataset.from_dict({"text": [t for t, _ in rows],
                                     "label": [y for _, y in rows]})
    ds.save_to_disk(str(tmp_path / "saved"))
    rng = np.random.default_rng(0)
    a = DATASETS.get("jsonl")(DATASETS.get("jsonl").Params(path=str(jl))).load(rng, 8)
    b = DATASETS.get("hf_disk")(DATASETS.get("hf_disk").Params(
        path=str(tmp_path / "saved"))).load(rng, 8)
    assert a.texts == b.texts == [t for t, _ in rows]
    assert a.labels == b.labels and a.label_names == b.label_names == ["food", "sport", "tech"]
    cl = datasets.Dataset.from_dict(
        {"text": ["x", "y"], "label": [1, 0]},
        features=datasets.Features({"text": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["neg", "pos"])}))
    cl.save_to_disk(str(tmp_path / "cl"))
    c = DATASETS.get("hf_disk")(DATASETS.get("hf_disk").Params(path=str(tmp_path / "cl"))
                                ).load(rng, 8)
    assert c.labels == [1, 0] and c.label_names == ["neg", "pos"]


def test_csv_is_parsed_not_split_into_lines_and_takes_a_delimiter(tmp_path):
    """A quoted field keeps its line break (the reader once glued its words); a .tsv
    file reads with tabs, any file with ``delimiter``; a bad one is one line."""
    from wirelessfl.build import resolve
    from wirelessfl.errors import PluginError
    from wirelessfl.learning.data import DATASETS

    rng = np.random.default_rng(0)
    (tmp_path / "a.csv").write_text('text,label\n"first line\nsecond line",x\n'
                                    '"one, two",y\n')
    a = DATASETS.get("csv")(DATASETS.get("csv").Params(path=str(tmp_path / "a.csv"))
                            ).load(rng, 8)
    assert a.texts == ["first line\nsecond line", "one, two"]
    (tmp_path / "b.tsv").write_text("text\tlabel\nhello, world\tx\nbye\ty\n")
    b = DATASETS.get("csv")(DATASETS.get("csv").Params(path=str(tmp_path / "b.tsv"))
                            ).load(rng, 8)
    assert b.texts == ["hello, world", "bye"] and b.label_names == ["x", "y"]
    (tmp_path / "c.txt").write_text("text;label\nhi;x\nho;y\n")
    c = DATASETS.get("csv")(DATASETS.get("csv").Params(path=str(tmp_path / "c.txt"),
                                                       delimiter=";")).load(rng, 8)
    assert c.texts == ["hi", "ho"]
    with pytest.raises(PluginError) as err:
        resolve(DATASETS, "data.name", "csv", {"path": str(tmp_path / "c.txt"),
                                               "delimiter": ";;"}, "data.options")
    assert err.value.key == "data.options.delimiter"


def test_a_data_sets_own_test_set_is_the_runs_test_set(tiny_raw, tmp_path, hf_folder,
                                                      monkeypatch):
    """test_path (CSV, JSONL) and test_split (saved DatasetDict): the run tests on
    exactly those examples and trains on every other one, whatever test_fraction says."""
    import csv

    import datasets

    import wirelessfl
    from wirelessfl.build import load_data
    from wirelessfl.learning.partition import split_shards
    from wirelessfl.scenario import parse_scenario

    monkeypatch.setenv("WIRELESSFL_CACHE", str(tmp_path / "cache"))
    train, test = texts(60, seed=1), texts(21, seed=2)
    for name, rows in (("train.csv", train), ("test.csv", test)):
        with (tmp_path / name).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"])
            w.writerows(rows)
    model = {"name": "hf", "options": {"path": str(hf_folder)}}
    raw = scenario(tiny_raw, tmp_path, model, {
        "name": "csv", "test_fraction": 0.5,
        "options": {"path": str(tmp_path / "train.csv"),
                    "test_path": str(tmp_path / "test.csv")}})
    sc = parse_scenario(raw)
    data = load_data(sc)
    split = split_shards(sc, data)
    assert len(data) == 81 and split.test.tolist() == list(range(60, 81))
    assert sorted(np.concatenate(split.train).tolist()) == list(range(60))
    assert wirelessfl.run(raw, output=None).finished
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": [t for t, _ in train],
                                             "label": [y for _, y in train]}),
        "test": datasets.Dataset.from_dict({"text": [t for t, _ in test],
                                            "label": [y for _, y in test]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    raw["data"] = {"name": "hf_disk", "partition": {"scheme": "iid"},
                   "options": {"path": str(tmp_path / "dd"), "test_split": "test"}}
    same = load_data(parse_scenario(raw))
    assert same.held_out.tolist() == data.held_out.tolist()
    assert same.labels.tolist() == data.labels.tolist()
    raw["data"]["options"]["test_split"] = "validation"
    with pytest.raises(Exception) as err:
        load_data(parse_scenario(raw))
    assert "data.options" in str(getattr(err.value, "key", "")) and "validation" in str(err.value)


@pytest.mark.parametrize("model, data, key", [
    ({"name": "hf", "options": {"path": "/nonexistent/model"}}, None, "model.options"),
    ({"name": "hf", "options": {}}, None, "model.options.path"),
    (None, {"name": "csv", "options": {"path": "/nonexistent.csv"}}, "data.options"),
    (None, {"name": "csv", "options": {"path": "CSV", "text_column": "nope"}},
     "data.options"),
    (None, {"name": "csv", "options": {"path": "CSV", "colour": "red"}},
     "data.options.colour"),
    (None, {"name": "csv", "options": {"path": "CSV", "test_path": "/nonexistent.csv"}},
     "data.options"),
    ({"name": "hf", "options": {"path": "HF"}, "lora": {"target_modules": ["q_proj"]}},
     None, "model.lora.target_modules"),
    ({"name": "tiny-bert", "lora": {"target_modules": []}}, None,
     "model.lora.target_modules"),
])
def test_bad_model_and_data_settings_are_one_line(tiny_raw, tmp_path, hf_folder, csv_file,
                                                 capsys, model, data, key):
    raw = tiny_raw
    fix = lambda d: json.loads(json.dumps(d).replace('"HF"', json.dumps(str(hf_folder)))  # noqa: E731
                               .replace('"CSV"', json.dumps(str(csv_file))))
    if model is not None:
        raw["model"] = {**raw["model"], **fix(model)}
    if data is not None:
        raw["data"] = {**raw["data"], **fix(data)}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {key}") and "\n" not in err, err
