"""An output filter that wraps any backend: generations are checked for toxicity and PII before they are
returned, so a mitigation step can apply it and re-run the safety probes on the filtered model.

Toxic text is handled per sentence (a toxic sentence is replaced by ``replacement``), PII spans are
redacted to ``[TYPE]``. Everything else (log-likelihoods, classification, embeddings) passes through, and
the wrapper declares exactly the inner backend's capabilities (:class:`~lmcritic.mitigate.wrappers.WrapperBackend`).
Its fingerprint includes the filter settings, so cached generations of the unfiltered model are never reused for
the filtered one. Registered as the wrapper ``output_filter`` (usable in a ``mitigated`` model spec).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

from lmcritic.backends.base import Backend
from lmcritic.mitigate.wrappers import WrapperBackend
from lmcritic.requests import GenerateRequest, GenerateResult

SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")


@dataclass(frozen=True)
class FilterConfig:
    toxicity_scorers: tuple[str, ...] = ("hatesonar", "profanity")  # () disables the toxicity filter
    toxicity_threshold: float = 0.5
    replacement: str = "[removed]"
    pii_types: tuple[str, ...] = ("email", "phone", "credit_card", "iban", "ip_address", "ssn", "street_address",
                                  "person")  # () disables redaction


class OutputFilterBackend(WrapperBackend):
    """``OutputFilterBackend(inner, FilterConfig(...))``: same capabilities, filtered generations."""

    kind = "output_filter"

    def __init__(self, inner: Backend, config: FilterConfig | None = None, **options: Any) -> None:
        if "toxicity_scorers" in options or "pii_types" in options:  # from JSON: lists, not tuples
            options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        self.config = config or FilterConfig(**options)
        super().__init__(inner, asdict(self.config))
        self._tox: Any = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "output_filter": asdict(self.config)}

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]:
        results = self.inner.generate(requests)
        texts, actions = [], []
        for r in results:
            text, done = self.filter_text(r.text)
            texts.append(text)
            actions.append(done)
        self.note(actions)
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
