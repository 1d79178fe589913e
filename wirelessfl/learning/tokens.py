"""Tokenisation: classification texts, instruction records and plain text to tensors.

Instruction records use the Alpaca template (:func:`~wirelessfl.learning.data.alpaca_prompt`)
and score only the response tokens; plain text scores every token; classification
texts are padded and truncated with their label. The result is cached under
``$WIRELESSFL_CACHE`` (default ``~/.cache/wirelessfl``; ``off`` disables it), keyed by
the data's fingerprint, the model's tokenizer and the maximum length.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

import numpy as np
import torch

from wirelessfl.cache import cache_dir
from wirelessfl.learning.data import (
    IGNORE,
    InstructionData,
    PlainText,
    TextData,
    TokenData,
    alpaca_prompt,
    label_codes,
)

TOKENIZATION_VERSION = 2  # bump when tokenisation changes what it produces


def group_codes(values: list[str] | None) -> tuple[np.ndarray | None, list[str] | None]:
    """Group values -> (codes (N,), sorted names), or (None, None) without groups."""
    if values is None:
        return None, None
    codes, names = label_codes(values)
    return np.asarray(codes, dtype=np.int64), names


def tokenize(texts: list[str], labels: list[int], label_names: list[str], tokenizer,
             length: int, groups: list[str] | None = None) -> TokenData:
    """Classification examples padded and truncated to ``length`` tokens."""
    enc = tokenizer(texts, truncation=True, max_length=length, padding="max_length",
                    return_tensors="pt")
    codes, names = group_codes(groups)
    return TokenData(enc["input_ids"].long(), enc["attention_mask"].long(),
                     torch.as_tensor(labels, dtype=torch.long), label_names,
                     int(tokenizer.vocab_size), codes, names)


def _pieces(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, no special tokens."""
    if not texts:
        return []
    return [list(x) for x in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _bos(tokenizer) -> list[int]:
    bos = getattr(tokenizer, "bos_token_id", None)
    return [] if bos is None else [int(bos)]


def _pad(rows: list[list[int]], targets: list[list[int]], length: int, pad_id: int
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and targets, each (N, length)."""
    n = len(rows)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    tgt = torch.full((n, length), IGNORE, dtype=torch.long)
    for i, (r, t) in enumerate(zip(rows, targets, strict=True)):
        ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
        tgt[i, : len(t)] = torch.as_tensor(t, dtype=torch.long)
    return ids, mask, tgt


def prompt_ids(tokenizer, instruction: str, input_: str = "") -> list[int]:
    """The token ids of an instruction's prompt exactly as training lays it out
    (``BOS? head input tail``): what to give ``generate`` to ask the trained model."""
    head, body, tail = alpaca_prompt(instruction, input_)
    return _bos(tokenizer) + [t for piece in _pieces(tokenizer, [head, body, tail])
                              for t in piece]


def tokenize_instructions(data: InstructionData, tokenizer, length: int) -> TokenData:
    """Instruction records in the Alpaca template, scored on the response only.

    Each sequence is ``BOS? head input tail response EOS``, at most ``length`` tokens:
    the response keeps at most what the template leaves, then the input is cut to fit
    (the template itself is never cut). Targets are the response and the EOS token.
    """
    eos, pad = int(tokenizer.eos_token_id), int(tokenizer.pad_token_id)
    bos = _bos(tokenizer)
    parts = [alpaca_prompt(i, x) for i, x in zip(data.instructions, data.inputs, strict=True)]
    heads = _pieces(tokenizer, [p[0] for p in parts])
    bodies = _pieces(tokenizer, [p[1] for p in parts])
    tails = _pieces(tokenizer, [p[2] for p in parts])
    outs = _pieces(tokenizer, data.outputs)
    rows, targets, prompt_len = [], [], []
    for head, body, tail, out in zip(heads, bodies, tails, outs, strict=True):
        frame = len(bos) + len(head) + len(tail)
        resp = (out + [eos])[: max(1, length - frame)]
        body = body[: max(0, length - frame - len(resp))]
        prompt = (bos + head + body + tail)[: max(length - len(resp), 1)]
        rows.append(prompt + resp)
        targets.append([IGNORE] * len(prompt) + resp)
        prompt_len.append(len(prompt))
    ids, mask, tgt = _pad(rows, targets, length, pad)
    codes, names = group_codes(data.groups)
    return TokenData(ids, mask, tgt, [], int(len(tokenizer)), codes, names,
                     torch.as_tensor(prompt_len, dtype=torch.long))


def tokenize_text(data: PlainText, tokenizer, length: int) -> TokenData:
    """Plain text for next-token prediction: ``BOS? text EOS`` cut to ``length`` tokens,
    every token scored."""
    eos, pad = int(tokenizer.eos_token_id), int(tokenizer.pad_token_id)
    bos = _bos(tokenizer)
    rows = [(bos + t)[: length - 1] + [eos] for t in _pieces(tokenizer, data.texts)]
    ids, mask, tgt = _pad(rows, rows, length, pad)
    codes, names = group_codes(data.groups)
    return TokenData(ids, mask, tgt, [], int(len(tokenizer)), codes, names)


def tokenize_any(data: TextData | InstructionData | PlainText, tokenizer,
                 length: int) -> TokenData:
    """Tokenise any untokenised form (classification, instructions, plain text)."""
    if isinstance(data, InstructionData):
        out = tokenize_instructions(data, tokenizer, length)
    elif isinstance(data, PlainText):
        out = tokenize_text(data, tokenizer, length)
    else:
        out = tokenize(data.texts, data.labels, data.label_names, tokenizer, length,
                       data.groups)
    out.from_text = True
    out.held_out = None if data.held_out is None else np.asarray(data.held_out, dtype=bool)
    return out


def _n_examples(data: TextData | InstructionData | PlainText) -> int:
    return len(data.instructions) if isinstance(data, InstructionData) else len(data.texts)


def cached_tokenize(text: TextData | InstructionData | PlainText, tokenizer, length: int,
                    key: str) -> TokenData:
    """:func:`tokenize_any`, read from / written to the on-disk cache under ``key``.

    The cache file's name is a hash of ``key``, the data's form, the tokenizer's class,
    name, vocabulary size and special tokens, ``length`` and
    :data:`TOKENIZATION_VERSION`; it is written atomically, and an unreadable entry is
    recomputed.
    """
    folder = cache_dir()
    ident = json.dumps([key, type(text).__name__, type(tokenizer).__name__,
                        getattr(tokenizer, "name_or_path", ""), int(tokenizer.vocab_size),
                        getattr(tokenizer, "pad_token_id", None),
                        getattr(tokenizer, "eos_token_id", None),
                        getattr(tokenizer, "bos_token_id", None),
                        length, TOKENIZATION_VERSION, _n_examples(text)])
    path = None
    if folder is not None:
        path = folder / "tokens" / f"{hashlib.sha256(ident.encode()).hexdigest()[:32]}.pt"
        if path.is_file():
            try:
                d = torch.load(path, weights_only=True)
                return TokenData(d["input_ids"], d["attention_mask"], d["labels"],
                                 list(d["label_names"]), int(d["vocab_size"]),
                                 None if d["groups"] is None else d["groups"].numpy(),
                                 d["group_names"], d["prompt_lengths"], from_text=True,
                                 held_out=None if d.get("held_out") is None
                                 else d["held_out"].numpy())
            except Exception:  # noqa: BLE001  (a truncated or foreign file: recompute)
                pass
    data = tokenize_any(text, tokenizer, length)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            torch.save({"input_ids": data.input_ids, "attention_mask": data.attention_mask,
                        "labels": data.labels, "label_names": data.label_names,
                        "vocab_size": data.vocab_size,
                        "groups": None if data.groups is None else torch.as_tensor(data.groups),
                        "group_names": data.group_names,
                        "prompt_lengths": data.prompt_lengths,
                        "held_out": None if data.held_out is None
                        else torch.as_tensor(data.held_out)}, tmp)
            os.replace(tmp, path)
        except OSError:  # a read-only home: run without the cache
            pass
    return data
