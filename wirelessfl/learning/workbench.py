"""The learning side of a run: data, client shards, the one model and its trainer.

A :class:`Workbench` holds the frozen base model once, wrapped with LoRA at the
largest client rank, and trains any client on it from the adapter it is given
(:class:`~wirelessfl.learning.client.TrainJob`): one after another, or a group of
clients in one stacked forward/backward when that is exact (``compute.batch_clients``,
checked on this very model at start-up). It knows nothing of the radio: the round
loop asks it to train jobs and to evaluate adapters, and Ray actors build their own
copy from the same scenario.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wirelessfl import seeding
from wirelessfl.errors import ScenarioError
from wirelessfl.learning import adapters
from wirelessfl.learning.adapter import State, get_state, numels, set_state
from wirelessfl.learning.batched import clients_per_pass, probe
from wirelessfl.learning.client import ClientUpdate, LocalTrainer, Regularizer, TrainJob
from wirelessfl.learning.data import TokenData
from wirelessfl.learning.flops import training_step_flops
from wirelessfl.learning.lora import lora_sites, rank_grad_mask
from wirelessfl.learning.models import (
    HEAD_MODULE,
    SequenceClassifier,
    build_base,
    linear_module_names,
    missing_targets,
    model_source,
)
from wirelessfl.learning.partition import ClientShards
from wirelessfl.learning.tasks import task as task_named


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ScenarioError("compute.device", "cuda was asked for but no GPU is available; "
                            "use auto or cpu")
    return torch.device(name)


def groups(jobs: Sequence[TrainJob], per_pass: int) -> list[list[TrainJob]]:
    """``jobs`` cut into consecutive groups of ``per_pass``: the same groups whatever
    trains them, so where a group trains never changes a result."""
    return [list(jobs[i : i + per_pass]) for i in range(0, len(jobs), per_pass)]


class Workbench:
    """Data, shards, the LoRA-wrapped model and its trainer, for every client of a run.

    Parameters
    ----------
    sc : Scenario
        The resolved scenario (model, clients, eval and compute sections are read).
    data : TokenData
        The tokenised data set.
    shards : ClientShards
        The clients' training shards and the test sets.
    ranks : sequence of int, shape (K,)
        Every client's LoRA rank; the model is wrapped at the largest.
    frozen : callable, optional
        ``frozen(name)``: trainable parameters the aggregator freezes (FFA's A).
    regularizer : callable, optional
        A penalty added to every client's loss (SOFT's orthogonality penalty).
    merging : bool
        The aggregator merges updates into the base weights (FLoRA, FLoRIST): the
        pristine base weights are kept to export the final adapter, and the current
        ones travel to remote workers every round.
    tokenizer : optional
        Decodes generated text (``eval.generate``); None: completions are scored on
        token ids.
    """

    def __init__(self, sc: Any, data: TokenData, shards: ClientShards, ranks: Sequence[int],
                 frozen: Callable[[str], bool] | None = None,
                 regularizer: Regularizer | None = None, merging: bool = False,
                 tokenizer: Any = None) -> None:
        self.data, self.shards, self.merging = data, shards, merging
        self.task = task_named(sc.model.task)
        self.ranks = np.asarray(ranks, dtype=int)
        self.eval_batch_size = sc.eval.batch_size
        self.target_modules = list(sc.model.lora.target_modules or [])
        self.device = resolve_device(sc.compute.device)
        if sc.compute.torch_threads:
            torch.set_num_threads(sc.compute.torch_threads)
        self.base_recipe = {"name": sc.model.name, "options": sc.model.options,
                            "num_labels": data.num_labels, "vocab_size": data.vocab_size,
                            "max_length": sc.model.max_length, "pooling": sc.model.pooling,
                            "seed": seeding.int_seed(sc.seed, "torch_init", 0),
                            "task": self.task.name}
        base = build_base(**self.base_recipe)
        rows = base.get_input_embeddings().num_embeddings if hasattr(
            base, "get_input_embeddings") else data.vocab_size
        top = int(data.input_ids.max()) if data.input_ids.numel() else 0
        if top >= rows:
            raise ScenarioError("model.options", f"the data holds token id {top} but the "
                                f"model's embedding has {rows} rows: its tokenizer and weights "
                                "do not match")
        lora = sc.model.lora
        self.adapter = sc.model.adapter
        if self.adapter == "lora":
            missing = missing_targets(getattr(base, "encoder", base), lora.target_modules)
            if missing:
                raise ScenarioError("model.lora.target_modules",
                                    f"{sc.model.name} has no module {missing[0]!r}; its linear "
                                    f"modules: {', '.join(linear_module_names(base))}")
        self.alloc_rank = int(self.ranks.max())  # every client's tensors have this many ranks
        head = [HEAD_MODULE] if isinstance(base, SequenceClassifier) else None
        model_type = model_source(sc.model.name, sc.model.options).model_type()
        try:
            cfg = adapters.config(self.adapter, adapters.params(self.adapter,
                                                                sc.model.adapter_options),
                                  self.task.name == "causal_lm", self.alloc_rank, lora.alpha,
                                  lora.dropout, lora.target_modules or [], model_type, head)
            model = adapters.wrap(base, cfg, seeding.int_seed(sc.seed, "torch_init", 1))
        except ValueError as err:  # e.g. IA3 modules the model does not have
            raise ScenarioError("model.adapter_options", str(err).splitlines()[0]) from None
        self.model = model.to(self.device)
        for name, p in self.model.named_parameters():
            if p.requires_grad and frozen is not None and frozen(name):
                p.requires_grad_(False)
        self.trainer = LocalTrainer(self.model, data, self.device, sc.clients.local_steps,
                                    sc.clients.batch_size, sc.clients.learning_rate,
                                    sc.clients.weight_decay, regularizer=regularizer,
                                    task=self.task)
        self.initial_state = get_state(self.model)
        self.shapes = {n: tuple(t.shape) for n, t in self.initial_state.items()}
        self.numels = numels(self.initial_state)
        self.sites = lora_sites(self.model)
        self.original_bases = ({s.prefix: s.base.detach().clone() for s in self.sites}
                               if merging else {})
        self._masks = {r: rank_grad_mask(self.model, self.sites, r)
                       for r in set(self.ranks.tolist()) if r < self.alloc_rank}
        self.step_flops = training_step_flops(self.model, sc.clients.batch_size,
                                              sc.model.max_length, min(data.vocab_size, rows),
                                              self.device, self.task.logits)
        set_state(self.model, self.initial_state)
        self.clients_per_pass, self.batch_note = self._batching(sc)
        self.generate = sc.eval.generate
        self.tokenizer = tokenizer
        self.metrics = self.task.metrics + (("rougeL", "exact_match") if self.generate else ())
        if self.generate is not None:
            if self.task.name != "causal_lm" or data.prompt_lengths is None:
                raise ScenarioError("eval.generate", "needs a causal LM and instruction data "
                                    "(prompts to complete); drop it or use format: instruction")
            gen = seeding.rng(sc.seed, "data", 3)
            test = self.shards.test
            self.generation_sample = np.sort(gen.choice(test, min(self.generate.samples,
                                                                  len(test)), replace=False))

    def _batching(self, sc: Any) -> tuple[int, str | None]:
        """Clients per stacked pass (``compute.batch_clients``) and why it is 1, if so.

        The batched forward is checked on this very model (:func:`probe`); a model
        it cannot batch exactly trains one client after another, and the note says why
        (logged, and kept in ``summary.json``).
        """
        if not sc.compute.batch_clients:
            return 1, None
        if self.adapter != "lora":  # by design, not a failure: no warning
            return 1, f"clients train one by one: batched passes are written for LoRA, " \
                      f"not {self.adapter}"
        logits = self.data.vocab_size if self.task.name == "causal_lm" else 0
        fit = clients_per_pass(self.model, sc.clients.batch_size, sc.model.max_length,
                               self.device, sc.compute.max_batched_clients, logits)
        if fit == 1:  # one client per pass anyway: nothing to check
            return 1, None
        why = probe(self.model, self.initial_state, self.data.input_ids,
                    self.data.attention_mask, forward=self.task.logits)
        if why:
            note = f"clients train one by one: {why}"
            logging.getLogger("wirelessfl").warning(note)
            return 1, note
        return fit, None

    # ------------------------------------------------------------------ training

    def train(self, jobs: Sequence[TrainJob],
              regularizer: Regularizer | None = None) -> list[ClientUpdate]:
        """Train ``jobs`` in groups of :attr:`clients_per_pass`; updates in jobs' order."""
        return [u for g in groups(jobs, self.clients_per_pass)
                for u in self.train_group(g, regularizer)]

    def train_group(self, jobs: Sequence[TrainJob],
                    regularizer: Regularizer | None = None) -> list[ClientUpdate]:
        """Train a group of clients: together when batching is on, else one by one.

        ``regularizer`` replaces the trainer's own penalty for these jobs.
        """
        if self.clients_per_pass == 1 or len(jobs) == 1:
            return [self.train_one(j, regularizer) for j in jobs]
        return self.trainer.train_many(list(jobs), [self.shards.train[j.client] for j in jobs],
                                       regularizer)

    def train_one(self, job: TrainJob, regularizer: Regularizer | None = None) -> ClientUpdate:
        """Train one client alone (the sequential path), on its shard and at its rank."""
        return self.trainer.train(job, self.shards.train[job.client], self._masks.get(job.rank),
                                  regularizer)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, state: State) -> dict[str, float]:
        """The task's metrics of ``state`` on the held-out test set (accuracy and loss;
        or loss and perplexity), and with ``eval.generate`` the generation metrics."""
        out = self.trainer.evaluate(state, self.shards.test, self.eval_batch_size)
        if self.generate is not None:
            out.update(self.generation_metrics())
        return out

    def generation_metrics(self) -> dict[str, float]:
        """ROUGE-L and exact match of the model's greedy completions (as it stands) on
        the fixed held-out sample (:mod:`wirelessfl.learning.generation`)."""
        from wirelessfl.learning import generation
        from wirelessfl.learning.data import IGNORE

        d, tok = self.data, self.tokenizer
        pad = int(tok.pad_token_id) if tok is not None else 0
        eos = int(tok.eos_token_id) if tok is not None else 0
        self.model.eval()
        preds = generation.greedy(self.model, d.input_ids, d.prompt_lengths,
                                  self.generation_sample, self.generate.max_new_tokens, pad,
                                  eos, self.eval_batch_size)
        refs = generation.references(d.labels, d.prompt_lengths, self.generation_sample, eos,
                                     IGNORE)
        if tok is not None:
            preds = tok.batch_decode(preds, skip_special_tokens=True)
            refs = tok.batch_decode(refs, skip_special_tokens=True)
        return generation.score(preds, refs)

    def personal_quality(self, state: State,
                         personal: Callable[[int], State | None]) -> float:
        """Mean over clients of their own adapter's quality (accuracy, or perplexity) on
        their own test set.

        ``personal(k)`` is client k's adapter (None: ``state``, the global one).
        """
        values = []
        for k, test in enumerate(self.shards.client_test):
            own = personal(k)
            values.append(self.trainer.evaluate(own if own is not None else state, test,
                                                self.eval_batch_size)[self.task.quality])
        return float(np.mean(values))

    # ------------------------------------------------------------------ base weights

    def base_weights(self) -> dict[str, torch.Tensor]:
        """The adapted layers' current base weights, by module prefix (CPU)."""
        return {s.prefix: s.base.detach().cpu() for s in self.sites}

    def set_base_weights(self, bases: dict[str, torch.Tensor]) -> None:
        """Copy base weights (as :meth:`base_weights` gives them) into the model."""
        with torch.no_grad():
            for s in self.sites:
                if s.prefix in bases:
                    s.base.copy_(bases[s.prefix])

    def save_adapter(self, state: State, path: Path) -> None:
        """Write ``state`` as a peft adapter over the pristine base.

        For methods that merge into the base (``merging``) the adapter is the exact
        SVD of each site's total weight change (numerical rank), zero-padded to a
        common rank with scaling 1; otherwise the model is saved as it is.
        """
        if not self.merging:
            set_state(self.model, state)
            self.model.save_pretrained(str(path))
            return
        from wirelessfl.learning.export import export_merged

        deltas = {s.prefix: (s.base.detach().double().cpu()
                             - self.original_bases[s.prefix].double().cpu()
                             + s.delta(state)) for s in self.sites}
        export_merged(build_base(**self.base_recipe), deltas, state, self.target_modules,
                      path)
