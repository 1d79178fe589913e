"""Export a global model whose base weights were updated as a peft LoRA adapter."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from wirelessfl.learning.adapter import State, set_state
from wirelessfl.learning.lora import LORA_A, LORA_B
from wirelessfl.learning.models import wrap_lora


def export_merged(base: nn.Module, deltas: dict[str, torch.Tensor], state: State,
                  target_modules: list[str], path: Path, rtol: float = 1e-7) -> int:
    """Save ``deltas`` (module prefix -> d_out x d_in weight change) as an adapter.

    Each delta is factorised exactly by its SVD, keeping the singular values above
    ``rtol * s_max`` (its numerical rank), as ``B = U S``, ``A = V^T``; all sites are
    zero-padded to the largest such rank and saved with ``alpha = r`` (scaling 1),
    with the non-LoRA tensors of ``state`` (the head). Returns the adapter rank.
    """
    factors, rank = {}, 1
    for prefix, d in deltas.items():
        u, s, vh = torch.linalg.svd(d.double(), full_matrices=False)
        keep = int((s > rtol * s[0]).sum()) if s.numel() and s[0] > 0 else 0
        factors[prefix] = (u[:, :keep] * s[:keep], vh[:keep])
        rank = max(rank, keep)
    model = wrap_lora(base, rank, float(rank), 0.0, target_modules, seed=0)
    out = {n: t for n, t in state.items() if not (n.endswith(LORA_A) or n.endswith(LORA_B))}
    for prefix, (b, a) in factors.items():
        full_a = torch.zeros(rank, a.shape[1])
        full_b = torch.zeros(b.shape[0], rank)
        full_a[: a.shape[0]] = a.float()
        full_b[:, : b.shape[1]] = b.float()
        out[prefix + LORA_A], out[prefix + LORA_B] = full_a, full_b
    set_state(model, out)
    model.save_pretrained(str(path))
    return rank
