"""Adapter state: the trainable tensors of the peft model, read and written in place.

A client is its data shard plus its adapter tensors. Switching clients copies
tensors into the one model's parameters; no model is ever copied per client.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

State = dict[str, torch.Tensor]

# name -> parameter of each model, looked up once: a run swaps client states thousands
# of times per round at scale, and ``named_parameters`` walks every module each time
_PARAMS: weakref.WeakKeyDictionary[nn.Module, dict[str, nn.Parameter]] = (
    weakref.WeakKeyDictionary())


def parameters_by_name(model: nn.Module) -> dict[str, nn.Parameter]:
    """``dict(model.named_parameters())``, cached per model (parameters never change
    identity here: states are copied into them in place)."""
    params = _PARAMS.get(model)
    if params is None:
        params = _PARAMS[model] = dict(model.named_parameters())
    return params


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the trainable parameters (LoRA factors and the head), in model order."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def get_state(model: nn.Module, names: list[str] | None = None) -> State:
    """Detached CPU float32 copies of the trainable tensors."""
    params = parameters_by_name(model)
    names = names if names is not None else trainable_names(model)
    return {n: params[n].detach().to("cpu", torch.float32, copy=True) for n in names}


@torch.no_grad()
def set_state(model: nn.Module, state: State) -> None:
    """Copy ``state`` into the model's parameters in place."""
    params = parameters_by_name(model)
    for n, t in state.items():
        params[n].copy_(t)


def numels(state: State) -> dict[str, int]:
    """Element count per tensor."""
    return {n: int(t.numel()) for n, t in state.items()}


def lora_pairs(state: State) -> list[tuple[str, str]]:
    """``(A_name, B_name)`` per adapted matrix, with A of shape (r, d_in), B (d_out, r)."""
    pairs = []
    for n in state:
        if ".lora_A." in n:
            b = n.replace(".lora_A.", ".lora_B.")
            if b in state:
                pairs.append((n, b))
    return pairs
