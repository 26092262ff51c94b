"""Language identification with py3langid (langid.py's naive Bayes over byte n-grams, 97 languages, the
model ships inside the wheel). Scores: ``english`` (1 when the top language is English) and ``confidence``
(the top language's normalised probability); :meth:`LanguageScorer.detect` gives the language codes."""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from typing import Any, Sequence

from lmcritic.scorers import Scorer

MIN_CHARS = 3  # shorter texts carry no language signal: "und" (undetermined)


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class LanguageScorer(Scorer):
    name = "language"
    primary = "english"
    batch_size = 1024

    def __init__(self, languages: Sequence[str] | None = None) -> None:
        # restrict the candidate set (langid's set_languages); not ``languages``, which says what a scorer judges
        self.candidates = tuple(languages) if languages else None

    def not_applicable(self) -> str | None:
        if importlib.util.find_spec("py3langid") is None:
            return "py3langid is not installed (pip install 'lmcritic[monitor]')"
        return None

    def detect(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(ISO 639-1 code, probability) per text; ``("und", 0.0)`` for texts with no letters to go on."""
        ident = _identifier()
        ident.set_languages(list(self.candidates) if self.candidates else None)
        out = []
        for t in texts:
            if sum(ch.isalpha() for ch in t) < MIN_CHARS:
                out.append(("und", 0.0))
                continue
            code, prob = ident.classify(t)
            out.append((str(code), float(prob)))
        return out

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        return [{"english": float(code == "en"), "confidence": p} for code, p in self.detect(texts)]


__all__ = ["LanguageScorer"]
