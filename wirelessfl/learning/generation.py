"""Generation metrics of a causal LM: greedy decoding on held-out prompts, ROUGE-L, exact match.

On every evaluation round with ``eval.generate`` set, the global model completes a
fixed sample of held-out prompts (greedy decoding, at most ``max_new_tokens`` tokens,
stopping at the end token) and the completions are scored against the references
(the examples' responses):

``rougeL``
    ROUGE-L F-measure (Lin, 2004) over lower-cased word tokens: with ``L`` the length
    of the longest common subsequence of prediction and reference,
    ``P = L / |pred|``, ``R = L / |ref|``, ``F = 2 P R / (P + R)`` (0 when ``L = 0``),
    averaged over the sample.
``exact_match``
    Share of completions equal to their reference after normalisation (lower case,
    punctuation and extra white space removed).

Without a tokenizer (the synthetic task's raw token ids), both are computed on the
token ids. Generation costs host time only: nothing of it enters the simulated
clock.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

_WORD = re.compile(r"[a-z0-9]+")


def lcs_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (dynamic programme,
    O(|a| |b|) time, O(|b|) memory)."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: Sequence[Any], reference: Sequence[Any]) -> float:
    """ROUGE-L F-measure of two token sequences (0 when either is empty)."""
    lcs = lcs_length(prediction, reference)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(prediction), lcs / len(reference)
    return 2 * p * r / (p + r)


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric word tokens of ``text`` (ROUGE's default tokenisation)."""
    return _WORD.findall(text.lower())


def normalise(text: str) -> str:
    """Lower case, words only, single spaces: what exact match compares."""
    return " ".join(words(text))


def score(predictions: list[Any], references: list[Any]) -> dict[str, float]:
    """Mean ROUGE-L F and exact match of texts (or of token-id lists)."""
    rl, em = [], []
    for pred, ref in zip(predictions, references, strict=True):
        if isinstance(pred, str):
            rl.append(rouge_l(words(pred), words(ref)))
            em.append(float(normalise(pred) == normalise(ref)))
        else:
            rl.append(rouge_l(list(pred), list(ref)))
            em.append(float(list(pred) == list(ref)))
    return {"rougeL": float(np.mean(rl)) if rl else float("nan"),
            "exact_match": float(np.mean(em)) if em else float("nan")}


@torch.no_grad()
def greedy(model: nn.Module, ids: torch.Tensor, prompt_lengths: torch.Tensor, indices: np.ndarray,
           max_new_tokens: int, pad_id: int, eos_id: int, batch_size: int) -> list[list[int]]:
    """Greedy completions of the prompts of ``indices`` (left-padded batches), the end
    token and what follows it removed. Token ids, one list per example."""
    device = next(model.parameters()).device
    out: list[list[int]] = []
    for start in range(0, len(indices), batch_size):
        rows = [ids[i, : int(prompt_lengths[i])] for i in indices[start : start + batch_size]]
        width = max(len(r) for r in rows)
        batch = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):
            batch[k, width - len(r):] = r
            mask[k, width - len(r):] = 1
        with warnings.catch_warnings():  # prompt tuning: peft drops position ids by design
            warnings.filterwarnings("ignore", message="Position ids are not supported")
            gen = model.generate(input_ids=batch.to(device), attention_mask=mask.to(device),
                                 max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                 pad_token_id=pad_id, eos_token_id=eos_id, use_cache=True)
        for row in gen[:, width:].tolist():
            out.append(row[: row.index(eos_id)] if eos_id in row else row)
    return out


def references(labels: torch.Tensor, prompt_lengths: torch.Tensor, indices: np.ndarray,
               eos_id: int, ignore: int) -> list[list[int]]:
    """Each example's response token ids (its scored targets, without the end token)."""
    out = []
    for i in indices:
        tgt = [t for t in labels[i, int(prompt_lengths[i]):].tolist() if t != ignore]
        out.append(tgt[: tgt.index(eos_id)] if eos_id in tgt else tgt)
    return out
