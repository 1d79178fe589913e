"""Data sets from local files: CSV (or TSV), JSON lines and saved Hugging Face data sets.

Each gives classification examples (text and label), instruction records or plain
text, optionally a group column (``data.partition.column``) and the data set's own
test set (``test_path``, ``test_split``). Registered in
:data:`wirelessfl.learning.data.DATASETS` as ``csv``, ``jsonl`` and ``hf_disk``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from wirelessfl.errors import MissingPackageError
from wirelessfl.learning.data import (
    DATASETS,
    DataSource,
    InstructionData,
    PlainText,
    TextData,
    label_codes,
    with_group_column,
)


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


class _LocalSource(DataSource):
    """A data set read from the local disk: its group column comes from
    ``data.partition.column``, and its paths must exist."""

    @classmethod
    def options(cls, data_section: Any) -> dict[str, Any]:
        return with_group_column(data_section)

    @staticmethod
    def existing(value: str, key: str, folder: bool = False) -> Path:
        """``value`` as a path, which must be a file (or a ``folder``); ``key`` names the
        option in the error."""
        path = Path(value).expanduser()
        if not (path.is_dir() if folder else path.is_file()):
            raise ValueError(f"{key}: no {'folder' if folder else 'file'} {str(path)!r}")
        return path


class _TextFile(_LocalSource):
    """A local file of rows (and optionally its own test file) in one of the formats."""

    Params = TextFileParams

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.path = self.existing(self.params.path, "path")
        self.test_path = (None if self.params.test_path is None
                          else self.existing(self.params.test_path, "test_path"))

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
class HFDiskData(_LocalSource):
    """A Hugging Face datasets data set saved on disk (needs the datasets package)."""

    Params = HFDiskParams

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.path = self.existing(self.params.path, "path", folder=True)

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
