"""Local training and evaluation on the one shared model.

The trainer owns the single peft model. Training a client loads the global
adapter tensors into it in place, runs ``local_steps`` AdamW steps on the client's
shard and reads the adapter back; the optimiser state is fresh every round
(stateless clients, as in FedAvg). :meth:`LocalTrainer.train_many` trains several
clients together, their batches in one forward/backward (see ``batched``), with the
same batches and the same arithmetic per client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from torch import nn

from wirelessfl import seeding
from wirelessfl.learning.adapter import State, get_state, parameters_by_name, set_state
from wirelessfl.learning.batched import client_tensors, stacked_forward
from wirelessfl.learning.data import TokenData
from wirelessfl.learning.streams import client_dropout, step_generator
from wirelessfl.learning.tasks import Classification, Task

# ``penalty(tensors) -> Tensor``: a loss term on the trainable tensors by name; with a
# leading client axis on the tensors it returns one value per client
Regularizer = Callable[[dict[str, torch.Tensor]], torch.Tensor]


@dataclass
class TrainJob:
    """One client's local training: from which adapter, at which rank, with which streams.

    Attributes
    ----------
    client : int
    start : dict of str to Tensor
        The adapter it starts from.
    batch_seed : numpy SeedSequence
        Seeds the stream its mini-batches are drawn from (a job can be trained again
        with the same batches).
    mask_seed : numpy SeedSequence
        Keys its dropout streams: local step s draws its masks from
        ``step_generator(mask_seed, s)``, alone or in a group
        (:mod:`wirelessfl.learning.streams`).
    rank : int or None
        Its LoRA rank; ranks ``>= rank`` get no gradient. None: all.
    """

    client: int
    start: State
    batch_seed: np.random.SeedSequence
    mask_seed: np.random.SeedSequence
    rank: int | None = None


def round_job(seed: int, client: int, round_: int, start: State, rank: int | None) -> TrainJob:
    """Client ``client``'s local round ``round_``, its streams keyed by (client, round)
    (and the dropout's by local step)."""
    return TrainJob(client, start, seeding.seed_sequence(seed, "client", client, round_),
                    seeding.seed_sequence(seed, "client", client, round_, 1), rank)


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
        ``regularizer(tensors) -> Tensor`` added to the task loss (for SOFT's
        orthogonality penalty), :data:`Regularizer`.
    task : Task, optional
        What the model predicts and how the loss is taken (default: classification).
    """

    def __init__(self, model: nn.Module, data: TokenData, device: torch.device,
                 local_steps: int, batch_size: int, learning_rate: float,
                 weight_decay: float = 0.0,
                 regularizer: Regularizer | None = None, task: Task | None = None) -> None:
        self.task = task if task is not None else Classification()
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

    def train(self, job: TrainJob, shard: np.ndarray,
              grad_mask: Callable[[], None] | None = None,
              regularizer: Regularizer | None = None) -> ClientUpdate:
        """Train one client on ``shard`` from ``job.start``; return its new adapter state.

        ``grad_mask`` is called after every backward pass (it zeroes the gradients of
        the ranks a lower-rank client does not own); ``regularizer`` replaces the
        trainer's own for this call.
        """
        reg = regularizer if regularizer is not None else self.regularizer
        tensors = parameters_by_name(self.model)
        set_state(self.model, job.start)
        self.model.train()
        opt = torch.optim.AdamW(self.params, lr=self.lr, weight_decay=self.weight_decay)
        losses = []
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the caller's streams stay untouched
            torch.manual_seed(0)
            for step, idx in enumerate(self.batches(shard,
                                                    np.random.default_rng(job.batch_seed))):
                i = torch.as_tensor(idx, device=self.device)
                with client_dropout([step_generator(job.mask_seed, step)], [len(idx)],
                                    len(idx)):
                    logits = self.task.logits(self.model, self.ids[i], self.mask[i])
                loss = self.task.loss(logits, self.labels[i])
                total = loss + reg(tensors) if reg else loss
                opt.zero_grad(set_to_none=True)
                total.backward()
                if grad_mask is not None:
                    grad_mask()
                opt.step()
                losses.append(float(loss.detach()))
        return ClientUpdate(job.client, len(shard), get_state(self.model, list(job.start)),
                            float(np.mean(losses)), job.rank)

    def train_many(self, jobs: list[TrainJob], shards: list[np.ndarray],
                   regularizer: Regularizer | None = None) -> list[ClientUpdate]:
        """Train ``jobs`` (on ``shards``) together; the same updates as :meth:`train` one
        by one.

        Each step concatenates the clients' mini-batches (drawn from their own
        stream exactly as :meth:`train` draws them); a client with fewer rows (a
        shard smaller than the batch) is padded with copies of its first example at
        loss weight zero. The loss is ``sum_k (mean CE_k + penalty_k)``, so every
        client's stacked tensors get that client's own gradient; one AdamW over the
        stacked tensors is each client's own AdamW. Each client's rows get the dropout
        masks of its own stream (:mod:`wirelessfl.learning.streams`), the masks
        :meth:`train` draws for it.
        """
        k = len(jobs)
        reg = regularizer if regularizer is not None else self.regularizer
        params = parameters_by_name(self.model)
        names = list(jobs[0].start)
        stacked = {n: torch.stack([j.start[n] for j in jobs]).to(self.device, torch.float32)
                   .requires_grad_(params[n].requires_grad) for n in names}
        opt = torch.optim.AdamW([t for t in stacked.values() if t.requires_grad], lr=self.lr,
                                weight_decay=self.weight_decay)
        masks = self._rank_masks(stacked, [j.rank for j in jobs])
        tensors = client_tensors(self.model, stacked, k)
        plans = [self.batches(shard, np.random.default_rng(j.batch_seed))
                 for j, shard in zip(jobs, shards, strict=True)]
        losses = []
        self.model.train()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), stacked_forward(self.model, tensors, k):
            torch.manual_seed(0)
            for step in range(self.local_steps):
                rows = [p[step] for p in plans]
                width = max(len(r) for r in rows)
                idx = np.concatenate([np.concatenate([r, np.full(width - len(r), r[0])])
                                      for r in rows])
                i = torch.as_tensor(idx, device=self.device)
                gens = [step_generator(j.mask_seed, step) for j in jobs]
                with client_dropout(gens, [len(r) for r in rows], width):
                    logits = self.task.logits(self.model, self.ids[i], self.mask[i])
                loss = self.task.client_losses(logits, self.labels[i], [len(r) for r in rows],
                                               width)
                total = loss.sum() + reg(tensors).sum() if reg else loss.sum()
                opt.zero_grad(set_to_none=True)
                total.backward()
                for name, m in masks.items():
                    if stacked[name].grad is not None:
                        stacked[name].grad.mul_(m)
                opt.step()
                losses.append(loss.detach().cpu())
        mean_loss = torch.stack(losses).double().mean(0).tolist()
        return [ClientUpdate(j.client, len(shard),
                             {n: t[i].detach().to("cpu", torch.float32, copy=True)
                              for n, t in stacked.items()}, float(mean_loss[i]), j.rank)
                for i, (j, shard) in enumerate(zip(jobs, shards, strict=True))]

    def _rank_masks(self, stacked: State, ranks: list[int | None]) -> dict[str, torch.Tensor]:
        """0/1 gradient masks (broadcastable to the stacked LoRA tensors) that keep
        each client's own first ``r_k`` ranks; none where every client owns all."""
        out = {}
        for name, t in stacked.items():
            if not t.requires_grad or ".lora_" not in name:
                continue
            is_a = ".lora_A." in name
            big_r = t.shape[1] if is_a else t.shape[2]
            r = torch.tensor([big_r if q is None else min(q, big_r) for q in ranks],
                             device=t.device)
            if bool((r == big_r).all()):
                continue
            keep = (torch.arange(big_r, device=t.device)[None, :] < r[:, None]).to(t.dtype)
            out[name] = keep[:, :, None] if is_a else keep[:, None, :]
        return out

    @torch.no_grad()
    def evaluate(self, state: State, indices: np.ndarray, batch_size: int) -> dict[str, float]:
        """The task's metrics of ``state`` on ``indices`` (accuracy and loss, or loss and
        perplexity), in the task's column order."""
        set_state(self.model, state)
        self.model.eval()
        return self.task.evaluate(self.model, self.ids, self.mask, self.labels, indices,
                                  batch_size)
