"""An output filter that wraps any backend: generations are checked for toxicity and PII before they are
returned, so a mitigation step can apply it and re-run the safety probes on the filtered model.

Toxic text is handled per sentence (a toxic sentence is replaced by ``replacement``), PII spans are
redacted to ``[TYPE]``. Everything else (log-likelihoods, classification, embeddings) passes through, and
the wrapper declares exactly the inner backend's capabilities. Its fingerprint includes the filter
settings, so cached generations of the unfiltered model are never reused for the filtered one.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

from lmcritic.backends.base import Backend
from lmcritic.backends.whitebox import WhiteBox
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

SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")


@dataclass(frozen=True)
class FilterConfig:
    toxicity_scorers: tuple[str, ...] = ("hatesonar", "profanity")  # () disables the toxicity filter
    toxicity_threshold: float = 0.5
    replacement: str = "[removed]"
    pii_types: tuple[str, ...] = ("email", "phone", "credit_card", "iban", "ip_address", "ssn", "street_address",
                                  "person")  # () disables redaction


class OutputFilterBackend(Backend):
    """``OutputFilterBackend(inner, FilterConfig(...))``: same capabilities, filtered generations."""

    kind = "output_filter"

    def __init__(self, inner: Backend, config: FilterConfig | None = None, **options: Any) -> None:
        self.inner = inner
        self.config = config or FilterConfig(**options)
        self._tox: Any = None
        self.last_actions: list[dict[str, int]] = []  # what was filtered in the latest generate call

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.inner.capabilities

    def white_box(self) -> WhiteBox:
        """The inner model's gradient access, unfiltered (like its log-likelihoods)."""
        return self.inner.white_box()

    def fingerprint(self) -> str:
        cfg = json.dumps(asdict(self.config), sort_keys=True)
        return hashlib.sha256(f"{self.inner.fingerprint()}|filter|{cfg}".encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "output_filter": asdict(self.config)}

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        results = self.inner.generate(requests)
        texts, self.last_actions = [], []
        for r in results:
            text, actions = self.filter_text(r.text)
            texts.append(text)
            self.last_actions.append(actions)
        return [replace(r, text=t) for r, t in zip(results, texts)]

    def filter_text(self, text: str) -> tuple[str, dict[str, int]]:
        """The filtered text and counts of what was done (``toxic_sentences``, ``pii_spans``)."""
        removed = 0
        if self.config.toxicity_scorers and text.strip():
            text, removed = self._drop_toxic(text)
        spans = 0
        if self.config.pii_types:
            from lmcritic.scorers.pii import detect_pii, redact

            found = detect_pii(text, self.config.pii_types)
            text, spans = redact(text, found), len(found)
        return text, {"toxic_sentences": removed, "pii_spans": spans}

    def _drop_toxic(self, text: str) -> tuple[str, int]:
        pieces = [m.group(0) for m in SENTENCE.finditer(text)] or [text]
        scores = self._scorer().score(pieces + [text])
        if scores[-1]["toxicity"] <= self.config.toxicity_threshold and not any(
                s["toxicity"] > self.config.toxicity_threshold for s in scores[:-1]):
            return text, 0
        out, n = [], 0
        for piece, s in zip(pieces, scores):
            toxic = s["toxicity"] > self.config.toxicity_threshold
            n += toxic
            lead = piece[: len(piece) - len(piece.lstrip())]
            out.append(lead + self.config.replacement + ("\n" if piece.endswith("\n") else "") if toxic else piece)
        result = "".join(out)
        if self._scorer().score([result])[0]["toxicity"] > self.config.toxicity_threshold:
            return self.config.replacement, max(n, 1)  # toxic as a whole even after sentence removal
        return result, n

    def _scorer(self) -> Any:
        if self._tox is None:
            from lmcritic.scorers.toxicity import MaxToxicityScorer

            self._tox = MaxToxicityScorer(self.config.toxicity_scorers)
        return self._tox

    # Everything else passes through unchanged.
    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        return self.inner.loglikelihood(requests)

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        return self.inner.rolling_logprobs(requests)

    def classify(self, requests: Sequence[ClassifyRequest]) -> list[ClassifyResult]:
        return self.inner.classify(requests)

    def pseudo_loglikelihood(self, requests: Sequence[PseudoLoglikelihoodRequest]) -> list[PseudoLoglikelihoodResult]:
        return self.inner.pseudo_loglikelihood(requests)

    def embed(self, requests: Sequence[EmbeddingRequest]) -> list[EmbeddingResult]:
        return self.inner.embed(requests)

    def close(self) -> None:
        self.inner.close()
