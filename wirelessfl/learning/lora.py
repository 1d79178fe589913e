"""LoRA sites of the peft model and the rank algebra the aggregators share.

A *site* is one adapted matrix ``W`` (d_out x d_in) with its factors
``A`` (R x d_in) and ``B`` (d_out x R) and the peft scaling ``s = alpha / R``; its
update is ``s B A``. The model is allocated at the largest client rank R; a client
of rank ``r_k <= R`` uses the first ``r_k`` ranks and keeps the others at zero
(zero padding, as in HetLoRA), so every client's tensors have the same shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from wirelessfl.learning.adapter import State

LORA_A, LORA_B = ".lora_A.default.weight", ".lora_B.default.weight"


@dataclass
class LoraSite:
    """One adapted matrix of the model.

    Attributes
    ----------
    prefix : str
        Module name (``...attention.self.query``).
    a, b : str
        Parameter names of A (R, d_in) and B (d_out, R).
    d_in, d_out, rank : int
    scaling : float
        peft's ``alpha / R``.
    base : nn.Parameter
        The frozen base weight (d_out, d_in) that merging methods update in place.
    """

    prefix: str
    a: str
    b: str
    d_in: int
    d_out: int
    rank: int
    scaling: float
    base: nn.Parameter

    def delta(self, state: State) -> torch.Tensor:
        """``s B A`` (d_out, d_in) from a state holding this site's factors."""
        return self.scaling * (state[self.b].double() @ state[self.a].double())

    @torch.no_grad()
    def merge(self, delta: torch.Tensor) -> None:
        """``W <- W + delta`` in place."""
        self.base.add_(delta.to(self.base.dtype).to(self.base.device))


def lora_sites(model: nn.Module) -> list[LoraSite]:
    """Every adapted matrix of a peft model, in model order."""
    sites = []
    names = dict(model.named_parameters())
    for name in names:
        if name.endswith(LORA_A):
            prefix = name[: -len(LORA_A)]
            module = model.get_submodule(prefix)
            a = module.lora_A["default"].weight
            b = module.lora_B["default"].weight
            sites.append(LoraSite(prefix, name, prefix + LORA_B, a.shape[1], b.shape[0],
                                  a.shape[0], float(module.scaling["default"]),
                                  module.base_layer.weight))
    return sites


def numels_at_rank(shapes: dict[str, tuple[int, ...]], rank: int) -> dict[str, int]:
    """Element counts a client of ``rank`` sends: its first ``rank`` ranks of A and B."""
    out = {}
    for name, shape in shapes.items():
        if name.endswith(LORA_A):
            out[name] = min(rank, shape[0]) * shape[1]
        elif name.endswith(LORA_B):
            out[name] = shape[0] * min(rank, shape[1])
        else:
            out[name] = math.prod(shape)
    return out


def truncate(state: State, rank: int) -> State:
    """A copy of ``state`` with the LoRA ranks ``>= rank`` set to zero."""
    out = {}
    for name, t in state.items():
        t = t.clone()
        if name.endswith(LORA_A):
            t[rank:] = 0
        elif name.endswith(LORA_B):
            t[:, rank:] = 0
        out[name] = t
    return out


def fresh_lora(state: State, rank: int, generator: torch.Generator) -> State:
    """New LoRA factors as peft initialises them, in the first ``rank`` ranks.

    ``A ~ U(-1/sqrt(d_in), 1/sqrt(d_in))`` (peft's Kaiming-uniform with a = sqrt 5),
    ``B = 0``; ranks ``>= rank`` are zero; other tensors (the head) are kept.
    """
    out = {}
    for name, t in state.items():
        if name.endswith(LORA_A):
            a = torch.zeros_like(t)
            bound = 1.0 / math.sqrt(t.shape[1])
            a[:rank] = (torch.rand(t[:rank].shape, generator=generator) * 2 - 1) * bound
            out[name] = a
        elif name.endswith(LORA_B):
            out[name] = torch.zeros_like(t)
        else:
            out[name] = t.clone()
    return out


def rank_grad_mask(model: nn.Module, sites: list[LoraSite], rank: int):
    """A callable that zeroes the gradients of ranks ``>= rank`` (call after backward)."""
    params = dict(model.named_parameters())
    pairs = [(params[s.a], params[s.b]) for s in sites if s.rank > rank]

    def apply() -> None:
        for a, b in pairs:
            if a.grad is not None:
                a.grad[rank:] = 0
            if b.grad is not None:
                b.grad[:, rank:] = 0

    return apply
