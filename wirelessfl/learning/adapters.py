"""Parameter-efficient adapters through peft: LoRA and the prompt family.

``model.adapter`` picks one; every adapter's trainable tensors are what a client
trains, sends (``bits_per_value`` bits a value with no compression) and what FedIT
averages:

``lora``
    Low-rank factors on ``model.lora.target_modules`` (options in ``model.lora``); the
    only adapter the rank-based methods apply to (SOFT, random ranks, top-k, FFA-LoRA,
    FLoRA, FLoRIST, FedTreeLoRA, TSFA's rank choice).
``prompt_tuning``
    ``num_virtual_tokens`` trainable input embeddings prepended to every sequence
    (Lester et al., 2021); causal LMs.
``prefix_tuning``
    Trainable key/value prefixes of ``num_virtual_tokens`` positions in every layer
    (Li and Liang, 2021); causal LMs.
``ia3``
    Learned scaling vectors of the attention keys and values and of the feed-forward
    output (Liu et al., 2022), on the modules peft lists for the architecture unless
    ``target_modules`` / ``feedforward_modules`` are given; any task.

A classifier's head is trained with every adapter (peft ``modules_to_save``).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from peft import (
    IA3Config,
    LoraConfig,
    PeftConfig,
    PeftModel,
    PrefixTuningConfig,
    PromptTuningConfig,
    TaskType,
    get_peft_model,
)
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

ADAPTERS = ("lora", "prompt_tuning", "prefix_tuning", "ia3")
CAUSAL_ONLY = ("prompt_tuning", "prefix_tuning")


class PromptParams(BaseModel):
    """``model.adapter_options`` of prompt and prefix tuning."""

    model_config = ConfigDict(extra="forbid")
    num_virtual_tokens: int = Field(16, ge=1, le=512, description="virtual tokens (positions)")


class IA3Params(BaseModel):
    """``model.adapter_options`` of IA3."""

    model_config = ConfigDict(extra="forbid")
    target_modules: list[str] | None = Field(
        None, min_length=1, description="modules scaled (default: peft's for the architecture)")
    feedforward_modules: list[str] | None = Field(
        None, description="which of them are feed-forward (scaled on their input)")


def params(kind: str, options: dict[str, Any]) -> BaseModel | None:
    """The validated options of adapter ``kind`` (None for LoRA, whose are model.lora)."""
    if kind in CAUSAL_ONLY:
        return PromptParams.model_validate(options, strict=True)
    if kind == "ia3":
        return IA3Params.model_validate(options, strict=True)
    return None


def ia3_modules(model_type: str, p: IA3Params) -> tuple[list[str], list[str]]:
    """IA3's (target, feed-forward) modules: given, or peft's for the architecture.

    Raises ValueError when neither is known.
    """
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEED,
    )
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS,
    )

    targets = p.target_modules or TARGETS.get(model_type)
    if not targets:
        raise ValueError(f"no usual IA3 modules are known for model type {model_type!r}; "
                         "give target_modules and feedforward_modules")
    feed = p.feedforward_modules if p.feedforward_modules is not None else \
        FEED.get(model_type, [])
    return list(targets), [f for f in feed if f in targets]


def config(kind: str, options: BaseModel | None, causal: bool, rank: int, alpha: float,
           dropout: float, targets: list[str], model_type: str,
           head: list[str] | None) -> PeftConfig:
    """The peft configuration of adapter ``kind`` (``head``: modules to train whole)."""
    task = TaskType.CAUSAL_LM if causal else None
    if kind == "lora":
        return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                          target_modules=list(targets), modules_to_save=head)
    if kind == "prompt_tuning":
        return PromptTuningConfig(task_type=task, num_virtual_tokens=options.num_virtual_tokens)
    if kind == "prefix_tuning":
        return PrefixTuningConfig(task_type=task, num_virtual_tokens=options.num_virtual_tokens)
    targets_, feed = ia3_modules(model_type, options)
    return IA3Config(task_type=task, target_modules=targets_, feedforward_modules=feed,
                     modules_to_save=head)


def wrap(base: nn.Module, cfg: PeftConfig, seed: int) -> PeftModel:
    """``base`` wrapped in the adapter ``cfg`` (seeded initialisation)."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # transformers 5 deprecates a name peft still calls; nothing for the user to do
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                                category=FutureWarning)
        torch.manual_seed(seed)
        return get_peft_model(base, cfg)
