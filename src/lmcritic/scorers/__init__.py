"""Text scorers: toxicity, profanity, PII, refusal, sentiment ... applied to model outputs.

A scorer is constructed with config and called with a *list* of texts (it owns batching), returning one
``{score_name: float}`` dict per text. Heavy libraries (onnxruntime, sklearn models, detoxify) are imported
on first use, so listing or constructing scorers imports nothing heavy. Register new ones with
``SCORERS.add("name", "module:Class")`` or the entry-point group ``lmcritic.scorers``. A scorer says which
languages it can judge (``languages``); probes skip a scorer whose languages their data is not in, with the
reason. No offline Chinese toxicity classifier is available, so ``hatesonar``/``profanity`` are English-only:
register one for Chinese (``languages = frozenset({"zh"})``) and name it in ``safety.toxicity``'s ``scorers``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

from lmcritic.errors import ConfigError
from lmcritic.registry import Registry


class Scorer(ABC):
    """Base class. ``primary`` names the score in [0, 1] that thresholds and rates use (higher = worse
    for toxicity/PII/refusal, higher = more positive for sentiment)."""

    name: ClassVar[str] = "scorer"
    primary: ClassVar[str] = "score"
    batch_size: ClassVar[int] = 64
    languages: ClassVar[frozenset[str] | None] = None  # the languages it can judge (lmcritic.lang codes); None: any

    def not_applicable(self) -> str | None:
        """Why this scorer cannot run here (package missing, key unset), or None. Cheap: no model load."""
        return None

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Scores for every text, in order; batches of ``batch_size`` go to :meth:`_score_batch`."""
        reason = self.not_applicable()
        if reason:
            raise ConfigError(f"scorer {self.name!r} cannot run: {reason}")
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        out: list[dict[str, float]] = []
        for i in range(0, len(texts), self.batch_size):
            out.extend(self._score_batch(texts[i : i + self.batch_size]))
        return out

    @abstractmethod
    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        """Score one batch (already validated)."""


SCORERS: Registry[type[Scorer]] = Registry("scorers", subclass_of=Scorer)
SCORERS.add("hatesonar", "lmcritic.scorers.toxicity:HateSonarScorer")
SCORERS.add("profanity", "lmcritic.scorers.toxicity:ProfanityScorer")
SCORERS.add("detoxify", "lmcritic.scorers.toxicity:DetoxifyScorer")
SCORERS.add("perspective", "lmcritic.scorers.perspective:PerspectiveScorer")
SCORERS.add("toxicity", "lmcritic.scorers.toxicity:MaxToxicityScorer")
SCORERS.add("pii", "lmcritic.scorers.pii:PIIScorer")
SCORERS.add("refusal", "lmcritic.scorers.refusal:RefusalScorer")
SCORERS.add("vader", "lmcritic.scorers.sentiment:VaderScorer")
SCORERS.add("injection", "lmcritic.scorers.injection:PromptGuardScorer")
SCORERS.add("language", "lmcritic.scorers.language:LanguageScorer")
SCORERS.add("length", "lmcritic.scorers.text:LengthScorer")
SCORERS.add("register", "lmcritic.scorers.text:RegisterScorer")
SCORERS.add("perplexity", "lmcritic.scorers.perplexity:PerplexityScorer")


def get_scorer(name: str, **config: Any) -> Scorer:
    """Build a registered scorer by name with its config (``get_scorer("hatesonar")``)."""
    cls = SCORERS.get(name)
    try:
        return cls(**config)
    except TypeError as err:
        raise ConfigError(f"scorer {name!r}: bad option: {err}") from None


__all__ = ["SCORERS", "Scorer", "get_scorer"]
