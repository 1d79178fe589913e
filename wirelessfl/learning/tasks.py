"""Learning tasks: what a model predicts, how its loss is taken, how it is evaluated.

``model.task`` picks one (by default the model's own: encoders classify, causal
language models predict the next token):

``classification``
    An encoder, pooling and a linear head; cross-entropy over the class labels;
    evaluated by ``accuracy`` and ``loss``. Targets: one class per example, (N,).
``causal_lm``
    A decoder's next-token logits; cross-entropy over the target tokens only, the
    others marked :data:`IGNORE` (an instruction's prompt, padding), as Hugging Face
    does; evaluated by the held-out ``loss`` (mean NLL per target token) and
    ``perplexity`` (its exponential). Targets: token ids aligned with the input,
    (N, L); position t is predicted from the positions before it.

A task computes the loss of one client's batch (:meth:`Task.loss`) and, for clients
trained together in one stacked pass, each client's own loss (:meth:`Task.client_losses`),
equal to what the client's batch alone would give.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100  # a target token that is not scored (Hugging Face's ignore index)


class Task(ABC):
    """What a model is trained to predict.

    Attributes
    ----------
    name : str
        The ``model.task`` value.
    metrics : tuple of str
        Evaluation columns of ``metrics.csv``, in order.
    quality : str
        The metric runs are compared by (plots, ``summarize --target``, best so far).
    higher_is_better : bool
        Direction of :attr:`quality`.
    """

    name: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    quality: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True

    @abstractmethod
    def logits(self, model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The model's logits for a batch of (B, L) token ids."""

    @abstractmethod
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of one client's batch (a scalar mean)."""

    @abstractmethod
    def client_losses(self, logits: torch.Tensor, targets: torch.Tensor,
                      rows: list[int], width: int) -> torch.Tensor:
        """Each client's :meth:`loss` in a stacked batch, shape (K,).

        The batch holds K clients' batches of ``width`` rows each, client by client;
        client k's first ``rows[k]`` rows are its own, the rest padding (not scored).
        """

    @abstractmethod
    def evaluate(self, model: nn.Module, ids: torch.Tensor, mask: torch.Tensor,
                 targets: torch.Tensor, indices: np.ndarray,
                 batch_size: int) -> dict[str, float]:
        """:attr:`metrics` of ``model`` on the examples ``indices`` (eval mode, no grad)."""

    def better(self, a: float, b: float) -> bool:
        """Whether quality ``a`` beats ``b`` (NaN never beats a number)."""
        if math.isnan(a):
            return False
        return math.isnan(b) or (a > b if self.higher_is_better else a < b)


class Classification(Task):
    """Cross-entropy over class labels; accuracy and mean loss."""

    name = "classification"
    metrics = ("accuracy", "loss")
    quality = "accuracy"
    higher_is_better = True

    def logits(self, model, ids, mask):
        return model(input_ids=ids, attention_mask=mask)

    def loss(self, logits, targets):
        return F.cross_entropy(logits, targets)

    def client_losses(self, logits, targets, rows, width):
        k = len(rows)
        weight = torch.tensor([[1.0 / r] * r + [0.0] * (width - r) for r in rows],
                              device=logits.device)
        ce = F.cross_entropy(logits, targets, reduction="none")
        return (ce.view(k, width) * weight).sum(1)

    @torch.no_grad()
    def evaluate(self, model, ids, mask, targets, indices, batch_size):
        device = ids.device
        correct, loss_sum = 0, 0.0
        for start in range(0, len(indices), batch_size):
            i = torch.as_tensor(indices[start : start + batch_size], device=device)
            logits = self.logits(model, ids[i], mask[i])
            loss_sum += float(F.cross_entropy(logits, targets[i], reduction="sum"))
            correct += int((logits.argmax(-1) == targets[i]).sum())
        n = max(len(indices), 1)
        return {"accuracy": correct / n, "loss": loss_sum / n}


def _token_nll(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor,
                                                                      torch.Tensor]:
    """Per row: the summed NLL of the scored target tokens and their count, (B,), (B,).

    Logits at position t predict the target at t + 1.
    """
    pred = logits[:, :-1]
    tgt = targets[:, 1:]
    nll = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), tgt.reshape(-1),
                          ignore_index=IGNORE, reduction="none").view(tgt.shape)
    scored = (tgt != IGNORE)
    return (nll * scored).sum(1), scored.sum(1)


class CausalLM(Task):
    """Next-token cross-entropy over the target tokens; held-out loss and perplexity."""

    name = "causal_lm"
    metrics = ("loss", "perplexity")
    quality = "perplexity"
    higher_is_better = False

    def logits(self, model, ids, mask):
        # prompt tuning prepends its virtual tokens: keep the positions of the input
        return model(input_ids=ids, attention_mask=mask).logits[:, -ids.shape[1]:]

    def loss(self, logits, targets):
        sums, counts = _token_nll(logits, targets)
        return sums.sum() / counts.sum().clamp_min(1)

    def client_losses(self, logits, targets, rows, width):
        k = len(rows)
        sums, counts = _token_nll(logits, targets)
        real = torch.tensor([[1.0] * r + [0.0] * (width - r) for r in rows],
                            device=logits.device)
        sums = (sums.view(k, width) * real).sum(1)
        return sums / (counts.view(k, width) * real).sum(1).clamp_min(1)

    @torch.no_grad()
    def evaluate(self, model, ids, mask, targets, indices, batch_size):
        device = ids.device
        nll, count = 0.0, 0
        for start in range(0, len(indices), batch_size):
            i = torch.as_tensor(indices[start : start + batch_size], device=device)
            sums, counts = _token_nll(self.logits(model, ids[i], mask[i]).float(), targets[i])
            nll += float(sums.double().sum())
            count += int(counts.sum())
        loss = nll / max(count, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}


TASKS: dict[str, Task] = {t.name: t for t in (Classification(), CausalLM())}


def task(name: str) -> Task:
    """The task named ``name`` (``classification`` or ``causal_lm``)."""
    return TASKS[name]


def describe(t: Task) -> dict[str, Any]:
    """What ``summary.json`` records of the task."""
    return {"task": t.name, "quality_metric": t.quality}
