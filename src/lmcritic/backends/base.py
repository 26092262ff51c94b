"""The one interface every model backend implements.

A backend declares ``capabilities`` up front; the planner compares them with what each probe needs and
skips with a reason *before* running. The methods below are only reached for declared capabilities;
the default bodies raise :class:`CapabilityError` as a last safety net, never ``NotImplementedError``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

from lmcritic.backends.whitebox import WhiteBox
from lmcritic.errors import CapabilityError, InputError
from lmcritic.requests import (
    METHODS,
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

MAX_TEXT_CHARS = 2_000_000  # beyond this a request is refused rather than tokenized for minutes


class Backend(ABC):
    """A model. Construct with config; call with lists of requests; results come back in order."""

    kind: ClassVar[str] = "backend"
    loaded_from: Any = None  # the ModelSpec ``load_model`` built this from (None: built by hand, in memory)

    @property
    @abstractmethod
    def capabilities(self) -> frozenset[Capability]:
        """What this instance can do (may depend on the loaded model, e.g. a masked LM cannot generate)."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A stable content hash of the model, used in cache keys and run records."""

    def describe(self) -> dict[str, Any]:
        """A JSON-safe description for run records (never secrets)."""
        return {"backend": self.kind, "capabilities": sorted(c.value for c in self.capabilities)}

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            have = ", ".join(sorted(c.value for c in self.capabilities)) or "none"
            raise CapabilityError(
                f"{self.kind} backend cannot {capability.value}",
                f"it declares: {have}; pick a probe that needs only these, or another backend",
            )

    def call(self, method: str, requests: Sequence[Any]) -> list[Any]:
        """Dispatch by method name (used by the cache wrapper and the server)."""
        if method not in METHODS:
            raise CapabilityError(f"unknown backend method {method!r}", f"known: {', '.join(METHODS)}")
        results: list[Any] = getattr(self, method)(list(requests))
        return results

    # The methods, all list in → list out. Subclasses override those they declare.
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self.require(Capability.LOGLIKELIHOOD)
        return []

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        self.require(Capability.ROLLING_LOGPROBS)
        return []

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        self.require(Capability.GENERATE)
        return []

    def classify(self, requests: Sequence[ClassifyRequest]) -> list[ClassifyResult]:
        self.require(Capability.CLASSIFY)
        return []

    def pseudo_loglikelihood(
        self, requests: Sequence[PseudoLoglikelihoodRequest]
    ) -> list[PseudoLoglikelihoodResult]:
        self.require(Capability.PSEUDO_LOGLIKELIHOOD)
        return []

    def embed(self, requests: Sequence[EmbeddingRequest]) -> list[EmbeddingResult]:
        self.require(Capability.EMBEDDINGS)
        return []

    def white_box(self) -> WhiteBox:
        """Gradient access to the model (:class:`~lmcritic.backends.whitebox.WhiteBox`), for backends that declare
        ``GRADIENTS``; wrappers pass their inner backend's through. Check ``supports(GRADIENTS)`` first."""
        self.require(Capability.GRADIENTS)
        raise CapabilityError(f"the {self.kind} backend declares gradients but gives no white box",
                              "implement Backend.white_box, or drop GRADIENTS from its capabilities")

    def close(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing to release
        """Release resources (connections, GPU memory)."""


def check_text(text: object, what: str, *, allow_empty: bool = False) -> str:
    """Refuse text a model cannot take, with a message naming it: non-str, empty, too long, not UTF-8."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be text, got {type(text).__name__}")
    if not text and not allow_empty:
        raise InputError(f"{what} is empty", "give at least one character")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(
            f"{what} has {len(text):,} characters, over the {MAX_TEXT_CHARS:,} limit", "split it into documents"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(
            f"{what} is not valid UTF-8 (lone surrogate at character {err.start})",
            "decode the source with errors='replace'",
        ) from None
    return text


def check_generate(req: GenerateRequest, backend: Backend, index: int) -> None:
    """Validate one generate request against a backend's declared capabilities."""
    if req.is_chat:
        backend.require(Capability.CHAT)
        for msg in req.messages or ():
            check_text(msg.content, f"request {index} message content", allow_empty=True)
    else:
        check_text(req.prompt, f"request {index} prompt", allow_empty=True)
