"""What a probe can ask a model, and what comes back: frozen dataclasses, JSON-serializable.

Every backend method takes a *list* of requests and returns results in the same order, so backends
own batching and the cache wrapper can key each request on its canonical JSON.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from lmcritic.errors import ConfigError


class Capability(str, enum.Enum):
    """What a backend can do; probes declare the ones they need."""

    GENERATE = "generate"
    CHAT = "chat"
    LOGLIKELIHOOD = "loglikelihood"
    ROLLING_LOGPROBS = "rolling_logprobs"
    CLASSIFY = "classify"
    PSEUDO_LOGLIKELIHOOD = "pseudo_loglikelihood"
    GRADIENTS = "gradients"
    EMBEDDINGS = "embeddings"


@dataclass(frozen=True)
class GenParams:
    """Decoding settings. ``temperature == 0`` and ``num_beams == 1`` means greedy."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    num_beams: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None  # also return each generated token's log-prob and this many top alternatives

    def __post_init__(self) -> None:
        if self.logprobs is not None and not 0 <= self.logprobs <= 20:
            raise ConfigError(f"logprobs must be in [0, 20] or None, got {self.logprobs}")
        if self.max_new_tokens < 0:
            raise ConfigError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise ConfigError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_beams < 1:
            raise ConfigError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.sampling and self.num_beams > 1:
            raise ConfigError("beam search with sampling is not supported; set temperature=0 or num_beams=1")

    @property
    def sampling(self) -> bool:
        return self.temperature > 0


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context). lm-eval conventions: trailing spaces move to the continuation."""

    context: str
    continuation: str


@dataclass(frozen=True)
class LoglikelihoodResult:
    logprob: float
    is_greedy: bool  # every continuation token is the argmax
    n_tokens: int  # continuation tokens scored
    truncated: bool = False  # the context was cut on the left to fit the model


@dataclass(frozen=True)
class RollingRequest:
    """Per-token log-probs of a whole text by a strided sliding window.

    ``window`` is the model input length (None: the model's maximum); ``stride`` is how many new tokens
    each later window scores (None: ``window``, i.e. lm-eval's disjoint windows). With ``prefix`` (default)
    every token is scored, the first conditioned on the model's prefix token (BOS/EOS), as lm-eval's perplexity
    does; without it the first token is context only (log-prob None), as an OpenAI-style echo scores a prompt
    and as lm-eval's loglikelihood scores a non-empty context. ``top1`` also asks for each position's most
    likely token (what ``is_greedy`` and an API's ``top_logprobs`` need).
    """

    text: str
    window: int | None = None
    stride: int | None = None
    prefix: bool = True
    top1: bool = False


@dataclass(frozen=True)
class RollingResult:
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]
    logprobs: tuple[float, ...]
    offsets: tuple[tuple[int, int], ...]  # character span of each token in the text
    top1: tuple[tuple[str, float] | None, ...] | None = None  # (most likely token, its log-prob) if asked

    @property
    def total(self) -> float:
        return float(sum(x for x in self.logprobs if x is not None))

    @property
    def n_tokens(self) -> int:
        return len(self.logprobs)


@dataclass(frozen=True)
class GenerateRequest:
    """A plain prompt, or chat ``messages`` rendered with the model's chat template."""

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    params: GenParams = field(default_factory=GenParams)

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ConfigError("a generate request needs exactly one of 'prompt' or 'messages'")

    @property
    def is_chat(self) -> bool:
        return self.messages is not None


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, log-prob under the model, and the top alternatives at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class GenerateResult:
    text: str
    finish_reason: str  # "stop" (stop sequence or EOS) or "length"
    n_prompt_tokens: int = 0
    n_new_tokens: int = 0
    logprobs: tuple[TokenLogprob, ...] | None = None  # when GenParams.logprobs was set and the backend gives them


@dataclass(frozen=True)
class ClassifyRequest:
    text: str
    text_pair: str | None = None


@dataclass(frozen=True)
class ClassifyResult:
    labels: tuple[str, ...]
    probs: tuple[float, ...]

    @property
    def label(self) -> str:
        return self.labels[max(range(len(self.probs)), key=self.probs.__getitem__)]


@dataclass(frozen=True)
class PseudoLoglikelihoodRequest:
    """Masked-LM pseudo-log-likelihood (Salazar et al. 2020): mask each token in turn."""

    text: str


@dataclass(frozen=True)
class PseudoLoglikelihoodResult:
    logprob: float
    tokens: tuple[str, ...]
    token_logprobs: tuple[float, ...]


@dataclass(frozen=True)
class EmbeddingRequest:
    text: str


@dataclass(frozen=True)
class EmbeddingResult:
    vector: tuple[float, ...]


@dataclass(frozen=True)
class Method:
    """A backend method: its capability and the request/result types the cache must round-trip."""

    name: str
    capability: Capability
    request: type
    result: type


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("loglikelihood", Capability.LOGLIKELIHOOD, LoglikelihoodRequest, LoglikelihoodResult),
        Method("rolling_logprobs", Capability.ROLLING_LOGPROBS, RollingRequest, RollingResult),
        Method("generate", Capability.GENERATE, GenerateRequest, GenerateResult),
        Method("classify", Capability.CLASSIFY, ClassifyRequest, ClassifyResult),
        Method(
            "pseudo_loglikelihood",
            Capability.PSEUDO_LOGLIKELIHOOD,
            PseudoLoglikelihoodRequest,
            PseudoLoglikelihoodResult,
        ),
        Method("embed", Capability.EMBEDDINGS, EmbeddingRequest, EmbeddingResult),
    )
}
