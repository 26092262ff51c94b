"""Prompt-injection likelihood from the ``prompt-guardrail`` classifier (module ``guardify``), the detector
``robustness.injection`` reports on. An injection hidden in a longer benign text is diluted when the text is
scored whole, so the text is also scanned segment by segment (sentences and lines, as prompt-injection
classifiers recommend for long inputs) and the highest probability counts: ``injection`` = max P(injection)
over the whole text and its segments, ``flag`` = 1 when that is over 0.5."""
from __future__ import annotations

import importlib.util
import re
import warnings

from lmcritic.scorers import Scorer

SEGMENT = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")
MIN_SEGMENT_CHARS = 12  # shorter pieces ("P.S.", "End.") carry no instruction on their own


class PromptGuardScorer(Scorer):
    name = "injection"
    primary = "injection"
    batch_size = 256
    version = 2  # 2: segment scan (1 scored whole texts only)

    def __init__(self, segments: bool = True) -> None:
        self.segments = segments

    def not_applicable(self) -> str | None:
        if importlib.util.find_spec("guardify") is None:
            return "prompt-guardrail is not installed (pip install 'lmcritic[robustness]')"
        return None

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        pieces = [self._pieces(t) for t in texts]
        flat = [p for ps in pieces for p in ps]
        probs = iter(p_injection(flat))
        out = []
        for ps in pieces:
            p = max(next(probs) for _ in ps)
            out.append({"injection": p, "flag": float(p > 0.5)})
        return out

    def _pieces(self, text: str) -> list[str]:
        if not self.segments:
            return [text]
        parts = [s.strip() for s in SEGMENT.split(text) if len(s.strip()) >= MIN_SEGMENT_CHARS]
        return [text] + (parts if len(parts) > 1 else [])


def p_injection(texts: list[str]) -> list[float]:
    """P(injection) per text: one vectorised call into guardify's TF-IDF + logistic-regression model when it
    exposes them (the same numbers ``guardify.detect`` gives one by one), else ``detect`` per text."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its pickled sklearn model warns about the version
        import guardify

        model = getattr(guardify, "_get_default", lambda: None)()
        clf, vec = getattr(model, "_clf", None), getattr(model, "_vectorizer", None)
        if clf is None or vec is None or 1 not in list(getattr(clf, "classes_", [])):
            return [_p_one(guardify.detect(t)) for t in texts]
        proba = clf.predict_proba(vec.transform(texts))
        return [float(p) for p in proba[:, list(clf.classes_).index(1)]]


def _p_one(out: dict) -> float:
    return float(out["score"] if out["label"] == "injection" else 1 - out["score"])


__all__ = ["PromptGuardScorer", "p_injection"]
