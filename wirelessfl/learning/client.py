"""Local training and evaluation on the one shared model.

The trainer owns the single peft model. Training a client loads the global
adapter tensors into it in place, runs ``local_steps`` AdamW steps on the client's
shard and reads the adapter back; the optimiser state is fresh every round
(stateless clients, as in FedAvg).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wirelessfl.learning.adapter import State, get_state, set_state
from wirelessfl.learning.data import TokenData


@dataclass
class ClientUpdate:
    """A client's result after local training.

    Attributes
    ----------
    client_id : int
    num_samples : int
        Size of the client's training shard (the aggregation weight's numerator).
    state : dict of str to Tensor
        Every trainable tensor after local training (CPU, float32).
    train_loss : float
        Mean training loss over the local steps.
    rank : int or None
        The client's LoRA rank r_k (its first r_k ranks are used); None: all.
    metrics : dict
        Per-client values for ``clients.csv``.
    """

    client_id: int
    num_samples: int
    state: State
    train_loss: float
    rank: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @cached_property
    def finite(self) -> bool:
        """Whether the loss and every trained value are finite (a diverged client is not)."""
        return bool(np.isfinite(self.train_loss)
                    and all(bool(torch.isfinite(t).all()) for t in self.state.values()))


class LocalTrainer:
    """Runs local steps and evaluation on one model for every client.

    Parameters
    ----------
    model : nn.Module
        The peft-wrapped model, already on ``device``.
    data : TokenData
        The full data set; client shards and the test split are index arrays into it.
    device : torch.device
    local_steps, batch_size : int
    learning_rate, weight_decay : float
    regularizer : callable, optional
        ``regularizer(model) -> scalar Tensor`` added to the task loss (for SOFT's
        orthogonality penalty).
    """

    def __init__(self, model: nn.Module, data: TokenData, device: torch.device,
                 local_steps: int, batch_size: int, learning_rate: float,
                 weight_decay: float = 0.0,
                 regularizer: Callable[[nn.Module], torch.Tensor] | None = None) -> None:
        self.model = model
        self.device = device
        self.ids = data.input_ids.to(device)
        self.mask = data.attention_mask.to(device)
        self.labels = data.labels.to(device)
        self.local_steps = local_steps
        self.batch_size = batch_size
        self.lr = learning_rate
        self.weight_decay = weight_decay
        self.regularizer = regularizer
        self.params = [p for p in model.parameters() if p.requires_grad]

    def batches(self, shard: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """``local_steps`` mini-batches drawn by passes over a shuffled shard."""
        out: list[np.ndarray] = []
        order = rng.permutation(shard)
        pos = 0
        for _ in range(self.local_steps):
            if pos + self.batch_size > len(order) and pos > 0:
                order, pos = rng.permutation(shard), 0
            out.append(order[pos : pos + self.batch_size])
            pos += self.batch_size
        return out

    def train(self, client_id: int, shard: np.ndarray, global_state: State,
              rng: np.random.Generator, torch_seed: int, rank: int | None = None,
              grad_mask: Callable[[], None] | None = None,
              regularizer: Callable[[nn.Module], torch.Tensor] | None = None) -> ClientUpdate:
        """Train one client from ``global_state``; return its new adapter state.

        ``grad_mask`` is called after every backward pass (it zeroes the gradients of
        the ranks a lower-rank client does not own); ``regularizer`` replaces the
        trainer's own for this call.
        """
        reg = regularizer if regularizer is not None else self.regularizer
        set_state(self.model, global_state)
        self.model.train()
        opt = torch.optim.AdamW(self.params, lr=self.lr, weight_decay=self.weight_decay)
        losses = []
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(torch_seed)  # dropout masks: a stream per (client, round)
            for idx in self.batches(shard, rng):
                i = torch.as_tensor(idx, device=self.device)
                logits = self.model(input_ids=self.ids[i], attention_mask=self.mask[i])
                loss = F.cross_entropy(logits, self.labels[i])
                total = loss + reg(self.model) if reg else loss
                opt.zero_grad(set_to_none=True)
                total.backward()
                if grad_mask is not None:
                    grad_mask()
                opt.step()
                losses.append(float(loss.detach()))
        return ClientUpdate(client_id, len(shard), get_state(self.model, list(global_state)),
                            float(np.mean(losses)), rank)

    @torch.no_grad()
    def evaluate(self, state: State, indices: np.ndarray, batch_size: int) -> tuple[float, float]:
        """Accuracy and mean cross-entropy of ``state`` on ``indices``."""
        set_state(self.model, state)
        self.model.eval()
        correct, loss_sum = 0, 0.0
        for start in range(0, len(indices), batch_size):
            i = torch.as_tensor(indices[start : start + batch_size], device=self.device)
            logits = self.model(input_ids=self.ids[i], attention_mask=self.mask[i])
            loss_sum += float(F.cross_entropy(logits, self.labels[i], reduction="sum"))
            correct += int((logits.argmax(-1) == self.labels[i]).sum())
        n = max(len(indices), 1)
        return correct / n, loss_sum / n
