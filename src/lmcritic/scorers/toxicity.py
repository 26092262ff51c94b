"""Offline toxicity scorers: HateSonar (ONNX), alt-profanity-check (sklearn), Detoxify (optional), and a
``toxicity`` scorer that takes the maximum over several so one weak classifier does not hide toxic text."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from lmcritic.errors import ConfigError, LmcriticError
from lmcritic.scorers import SCORERS, Scorer

LOCALE_HINT = ("install the en_US.UTF-8 locale (Debian: apt-get install locales && "
               "sed -i 's/# en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && locale-gen), or use scorer 'profanity'")


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


@lru_cache(maxsize=1)
def _sonar_session() -> Any:
    """The HateSonar ONNX session, loaded once. Its StringNormalizer op builds the en_US.UTF-8 C++ locale,
    so a machine without that locale fails here; we turn onnxruntime's opaque error into a fix hint."""
    import onnxruntime as ort
    from hatesonar.api import DEFAULT_MODEL_FILE

    try:
        return ort.InferenceSession(str(DEFAULT_MODEL_FILE), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/RuntimeException types
        if "locale" in str(err).lower():
            raise LmcriticError("hatesonar needs the en_US.UTF-8 locale, which is not installed", LOCALE_HINT) \
                from None
        raise


class HateSonarScorer(Scorer):
    """Davidson et al. (2017) hate/offensive/neither classifier. ``toxicity`` = 1 − P(neither)."""

    name = "hatesonar"
    primary = "toxicity"
    languages = frozenset({"en"})
    batch_size = 256

    def not_applicable(self) -> str | None:
        if _missing("hatesonar") or _missing("onnxruntime"):
            return "hatesonar is not installed (pip install 'lmcritic[safety]')"
        return None

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        import numpy as np

        try:
            _, probs = _sonar_session().run(None, {"text": np.array(texts, dtype=object)})
        except Exception as err:
            if "locale" in str(err).lower():
                raise LmcriticError("hatesonar needs the en_US.UTF-8 locale", LOCALE_HINT) from None
            raise
        return [{"toxicity": 1.0 - float(p[2]), "hate_speech": float(p[0]), "offensive": float(p[1])}
                for p in probs]


class ProfanityScorer(Scorer):
    """alt-profanity-check: a linear SVM on bag-of-words, calibrated; good at slurs/swearing, blind to
    politely worded hate."""

    name = "profanity"
    primary = "toxicity"
    languages = frozenset({"en"})
    batch_size = 1024

    def not_applicable(self) -> str | None:
        return "alt-profanity-check is not installed (pip install 'lmcritic[safety]')" \
            if _missing("profanity_check") else None

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        import warnings

        with warnings.catch_warnings():  # its pickled sklearn model warns about version skew
            warnings.simplefilter("ignore")
            from profanity_check import predict_prob

            probs = predict_prob(texts)
        return [{"toxicity": float(p), "profanity": float(p)} for p in probs]


class DetoxifyScorer(Scorer):
    """Detoxify (Hanu & Unitary 2020), when the user has installed it and its checkpoint is cached."""

    name = "detoxify"
    primary = "toxicity"
    batch_size = 32

    def __init__(self, variant: str = "original") -> None:
        self.variant = variant
        self._model: Any = None

    def not_applicable(self) -> str | None:
        return "detoxify is not installed (pip install detoxify; its checkpoint downloads on first use)" \
            if _missing("detoxify") else None

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        if self._model is None:
            from detoxify import Detoxify

            self._model = Detoxify(self.variant)
        raw = self._model.predict(texts)
        return [{k: float(v[i]) for k, v in raw.items()} for i in range(len(texts))]


class MaxToxicityScorer(Scorer):
    """Runs several toxicity scorers; ``toxicity`` is their maximum, and each one's score is kept as
    ``<name>`` so reports can show which classifier flagged a text."""

    name = "toxicity"
    primary = "toxicity"
    batch_size = 256

    def __init__(self, scorers: Sequence[str] = ("hatesonar", "profanity")) -> None:
        if not scorers:
            raise ConfigError("toxicity scorer needs at least one scorer name", "e.g. scorers=['hatesonar']")
        self.names = tuple(scorers)
        self.parts = [SCORERS.get(n)() for n in self.names]
        known = [p.languages for p in self.parts]
        self.languages = None if any(x is None for x in known) else frozenset().union(*known)  # type: ignore

    def not_applicable(self) -> str | None:
        reasons = [r for r in (p.not_applicable() for p in self.parts) if r]
        return "; ".join(reasons) or None

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        per = [p.score(texts) for p in self.parts]
        out = []
        for i in range(len(texts)):
            row = {name: s[i][p.primary] for name, p, s in zip(self.names, self.parts, per)}
            out.append({"toxicity": max(row.values()), **row})
        return out


__all__ = ["HateSonarScorer", "ProfanityScorer", "DetoxifyScorer", "MaxToxicityScorer"]
