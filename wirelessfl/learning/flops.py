"""Training FLOPs of one local step, counted once per model with torch's FLOP counter."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

Forward = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _logits(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, attention_mask=mask)


def training_step_flops(model: nn.Module, batch_size: int, length: int, vocab_size: int,
                        device: torch.device, forward: Forward = _logits) -> int:
    """FLOPs of one forward + backward pass on a (batch_size, length) batch.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
    attention; element-wise work is not counted) on one sequence and multiplied by
    ``batch_size``: every counted product acts on each sequence apart, so the count
    is exactly linear in the batch (tested), and one sequence costs a sixteenth of
    a 16-sequence step to count. The optimiser step is negligible for LoRA and is
    not included. Parameter gradients are left as they were. ``forward(model, ids,
    mask)`` gives the logits (the task's forward: a causal LM's logits at every
    position, the LM head included).
    """
    return batch_size * _counted_flops(model, 1, length, vocab_size, device, forward)


def _counted_flops(model: nn.Module, batch_size: int, length: int, vocab_size: int,
                   device: torch.device, forward: Forward = _logits) -> int:
    """FLOPs counted on one (batch_size, length) forward + backward pass."""
    ids = torch.randint(1, vocab_size, (batch_size, length), device=device,
                        generator=torch.Generator(device=device).manual_seed(0))
    mask = torch.ones_like(ids)
    was_training = model.training
    model.train()
    saved = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    counter = FlopCounterMode(display=False)
    with counter:
        forward(model, ids, mask).sum().backward()
    for n, p in model.named_parameters():
        if p.requires_grad:
            p.grad = saved[n]
    model.train(was_training)
    return int(counter.get_total_flops())
