"""Many clients through one forward pass of the shared frozen model.

K clients' trainable tensors are stacked on a leading client axis: a LoRA factor
``A`` (R, d_in) becomes (K, R, d_in), the head's weight (C, h) becomes (K, C, h).
The mini-batches of the K clients are concatenated, client by client, into one
batch of ``K * rows`` examples. While :func:`stacked_forward` is active, every
peft LoRA layer computes its frozen base on the whole batch and adds each client's
own low-rank term to that client's rows with batched matmuls::

    y = W x + B_k (s A_k dropout(x))      for the rows of client k

and the head applies each client's own weights the same way. Everything else in
the model is shared and row-independent, so a client's rows see exactly the model
that client would see alone. Gradients of ``sum_k loss_k`` with respect to the
stacked tensors are each client's own gradients, and AdamW is element-wise, so one
optimiser over the stacked tensors is K independent client optimisers.

Only the layer types written here are batched: peft ``lora.Linear`` on an
``nn.Linear`` (no DoRA, no transposed weights, no LoRA bias) and the
``modules_to_save`` head over an ``nn.Linear``. :func:`batchable` says whether a
model holds nothing else that trains; :func:`probe` checks on the model itself that
the batched forward gives the per-client forward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from wirelessfl.learning.adapter import State, parameters_by_name

LORA_A, LORA_B = ".lora_A.default.weight", ".lora_B.default.weight"
HEAD_W, HEAD_B = ".modules_to_save.default.weight", ".modules_to_save.default.bias"


def _lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    """peft LoRA layers by module name."""
    from peft.tuners.lora.layer import LoraLayer

    return {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


def _heads(model: nn.Module) -> dict[str, nn.Module]:
    """peft ``modules_to_save`` wrappers by module name."""
    from peft.utils.other import ModulesToSaveWrapper

    return {name: m for name, m in model.named_modules()
            if isinstance(m, ModulesToSaveWrapper)}


def batchable(model: nn.Module) -> str | None:
    """None if every trainable tensor of ``model`` sits in a layer written here;
    otherwise why not (the first layer or tensor that is not)."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    covered: set[str] = set()
    for name, m in _lora_layers(model).items():
        if not isinstance(m, LoraLinear) or not isinstance(m.base_layer, nn.Linear):
            return f"{name} is a {type(m).__name__} over {type(m.base_layer).__name__}"
        if (list(m.lora_A) != ["default"] or m.use_dora.get("default")
                or m.fan_in_fan_out or m.lora_B["default"].bias is not None):
            return f"{name} uses a LoRA variant (DoRA, fan_in_fan_out, bias or adapters)"
        covered |= {name + LORA_A, name + LORA_B}
    for name, m in _heads(model).items():
        inner = m.modules_to_save["default"]
        if not isinstance(inner, nn.Linear):
            return f"{name} saves a {type(inner).__name__}, not a Linear"
        covered |= {name + HEAD_W} | ({name + HEAD_B} if inner.bias is not None else set())
    for name, p in model.named_parameters():
        if p.requires_grad and name not in covered:
            return f"trainable tensor {name} is in no batched layer"
    return None


def _rows(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x`` (K * rows, ..., d) viewed as (K, rows * ..., d): each client's rows."""
    if x.shape[0] % k:
        raise RuntimeError(f"a batched layer got {x.shape[0]} rows for {k} clients")
    return x.reshape(k, -1, x.shape[-1])


def _lora_forward(m: nn.Module, a: torch.Tensor, b: torch.Tensor, k: int):
    base, drop, s = m.base_layer, m.lora_dropout["default"], m.scaling["default"]

    def forward(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        result = base(x, *args, **kwargs)
        low = torch.bmm(torch.bmm(_rows(drop(x), k), a.mT) * s, b.mT)
        return result + low.reshape(result.shape)

    return forward


def _head_forward(w: torch.Tensor, bias: torch.Tensor | None, k: int):
    def forward(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        xk = _rows(x, k)
        out = (torch.bmm(xk, w.mT) if bias is None
               else torch.baddbmm(bias.unsqueeze(1), xk, w.mT))
        return out.reshape(*x.shape[:-1], w.shape[1])

    return forward


def client_tensors(model: nn.Module, stacked: State, k: int) -> State:
    """Every LoRA and head tensor per client, (K, ...): the stacked one where given,
    else the model's own (shared, e.g. FFA-LoRA's frozen A) broadcast over K."""
    params = parameters_by_name(model)
    names = [n for n in params if n.endswith((LORA_A, LORA_B, HEAD_W, HEAD_B))]
    return {n: stacked[n] if n in stacked else params[n].expand(k, *params[n].shape)
            for n in names}


@contextlib.contextmanager
def stacked_forward(model: nn.Module, tensors: State, k: int) -> Iterator[None]:
    """Within the block, ``model`` runs K clients at once (see the module docstring).

    ``tensors`` holds every LoRA and head tensor with a leading client axis
    (:func:`client_tensors`); the batch must be K equal groups of rows, client by
    client. The layers' own forward methods are restored on exit.
    """
    patched = []
    try:
        for name, m in _lora_layers(model).items():
            m.forward = _lora_forward(m, tensors[name + LORA_A], tensors[name + LORA_B], k)
            patched.append(m)
        for name, m in _heads(model).items():
            m.forward = _head_forward(tensors[name + HEAD_W], tensors.get(name + HEAD_B), k)
            patched.append(m)
        yield
    finally:
        for m in patched:
            del m.forward


def _logits(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, attention_mask=mask)


@torch.no_grad()
def probe(model: nn.Module, state: State, ids: torch.Tensor, mask: torch.Tensor,
          rtol: float = 1e-4, forward=_logits) -> str | None:
    """Check on ``model`` that the batched forward equals the per-client one.

    Two clients (``state`` and a perturbed copy) each run two examples alone and
    then together, in eval mode. Returns None when the logits agree to ``rtol``
    (relative to their scale), else why not. The model's state is restored.
    ``forward(model, ids, mask)`` gives the logits (the task's forward).
    """
    from wirelessfl.learning.adapter import get_state, set_state

    reason = batchable(model)
    if reason:
        return reason
    saved = get_state(model, list(state))
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(0)
    other = {n: t + 0.05 * torch.randn(t.shape, generator=gen) for n, t in state.items()}
    device = next(model.parameters()).device
    ids, mask = ids[:2].to(device), mask[:2].to(device)
    try:
        alone = []
        for s in (state, other):
            set_state(model, s)
            alone.append(forward(model, ids, mask))
        set_state(model, saved)
        stacked = {n: torch.stack([state[n], other[n]]).to(device) for n in state}
        with stacked_forward(model, client_tensors(model, stacked, 2), 2):
            together = forward(model, torch.cat([ids, ids]), torch.cat([mask, mask]))
        want = torch.cat(alone)
        err = float((together - want).abs().max())
        scale = max(float(want.abs().max()), 1e-6)
        if not err <= rtol * scale:
            return f"batched logits differ from per-client ones by {err:.3g} (scale {scale:.3g})"
        return None
    except RuntimeError as exc:  # a layer saw rows that are not client-major
        return f"batched forward failed: {exc}"
    finally:
        set_state(model, saved)
        model.train(was_training)


def device_memory_bytes(device: torch.device) -> int:
    """Total memory of ``device`` (the GPU's, or the host's RAM for the CPU), bytes.

    Total, not free: the chunk size derived from it must not change between two
    runs on the same machine (same scenario and seed, same metrics).
    """
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 8 GiB
        return 8 << 30


def bytes_per_client(model: nn.Module, batch_size: int, max_length: int) -> int:
    """Estimated training memory of one client in a batched pass, bytes.

    Activations kept for the backward pass of a transformer layer, per example,
    fp32: ``68 L h + 10 a L^2`` bytes (L tokens, width h, a heads; Korthikanti et
    al., 2022, doubled from their 16-bit count), times the layers, plus the
    client's trainable tensors four times (value, gradient, two AdamW moments).
    """
    cfg = encoder_config(model)
    h = hidden_size(model)
    layers = int(getattr(cfg, "num_hidden_layers", 12))
    heads = int(getattr(cfg, "num_attention_heads", 12))
    act = layers * (68 * max_length * h + 10 * heads * max_length**2)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(batch_size * act + 16 * trainable)


# Measured on a 2-core CPU (docs/decisions.md): a pass over more tokens, or more
# activation values (tokens x hidden width), than these runs out of cache and costs
# more per example than one client alone
CPU_TOKENS_PER_PASS = 4096
CPU_VALUES_PER_PASS = 786_432  # 3 MiB of fp32 per activation tensor


def encoder_config(model: nn.Module):
    """The first Hugging Face config in ``model`` that has a ``hidden_size``, or None."""
    return next((m.config for m in model.modules() if hasattr(m, "config")
                 and hasattr(m.config, "hidden_size")), None)


def hidden_size(model: nn.Module) -> int:
    """Width of the model's hidden states (768 if the config does not say)."""
    return int(getattr(encoder_config(model), "hidden_size", 768))


def clients_per_pass(model: nn.Module, batch_size: int, max_length: int,
                     device: torch.device, cap: int | None, logits_width: int = 0) -> int:
    """How many clients train in one batched pass (at most ``cap``, at least 1).

    On a GPU: as many as fit a quarter of its memory (:func:`bytes_per_client`).
    On the CPU, where the cache and not the memory is the limit: as many whole
    client batches as fit both :data:`CPU_TOKENS_PER_PASS` tokens and
    :data:`CPU_VALUES_PER_PASS` activation values, an activation being as wide as
    the widest of the hidden states and the logits (``logits_width``: a causal LM's
    vocabulary, whose logits at every position dwarf its hidden states).
    """
    tokens = batch_size * max_length
    if device.type == "cpu":
        width = max(hidden_size(model), logits_width)
        fit = max(1, min(CPU_TOKENS_PER_PASS // tokens,
                         CPU_VALUES_PER_PASS // (tokens * width)))
    else:
        fit = max(1, device_memory_bytes(device) // 4
                  // bytes_per_client(model, batch_size, max_length))
    return int(min(fit, cap) if cap else fit)
