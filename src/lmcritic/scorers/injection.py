"""Prompt-injection likelihood from the ``prompt-guardrail`` classifier (module ``guardify``), the detector
``robustness.injection`` reports on. An injection hidden in a longer benign text is diluted when the text is
scored whole, so the text is also scanned segment by segment (sentences and lines, as prompt-injection
classifiers recommend for long inputs) and the highest probability counts. The classifier is a bag of words:
it knows the "ignore all previous instructions" vocabulary and little else (it flags 12 of the 40 packaged
injection tasks, whose injected sentences score as low alone as in their documents). So the shape of an
injected instruction is also read by rules (:mod:`lmcritic.scorers._injection_rules`: override, spoofed role or
turn, announced new task, persona swap, ...). Scores: ``classifier`` = max P(injection) over the whole text and
its segments, ``rules`` = the rules' combined score, ``injection`` = the larger of the two, ``flag`` = 1 when
that is over 0.5; ``rules=False`` gives the classifier alone (version 2)."""
from __future__ import annotations

import importlib.util
import re
import warnings

from lmcritic.scorers import Scorer
from lmcritic.scorers._injection_rules import rule_hits

SEGMENT = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")
MIN_SEGMENT_CHARS = 12  # shorter pieces ("P.S.", "End.") carry no instruction on their own


class PromptGuardScorer(Scorer):
    name = "injection"
    primary = "injection"
    batch_size = 256
    code_version = 3  # 3: + rules; 2: segment scan; 1: whole texts only

    def __init__(self, segments: bool = True, rules: bool = True) -> None:
        self.segments, self.rules = segments, rules

    @property
    def version(self) -> str:
        """The cache key's part for the scorer: code version, and the rules' own hash when they are on."""
        from lmcritic.scorers._injection_rules import fingerprint

        return f"{self.code_version}-{fingerprint()}" if self.rules else "2"

    def not_applicable(self) -> str | None:
        if importlib.util.find_spec("guardify") is None:
            return "prompt-guardrail is not installed (pip install 'lmcritic[robustness]')"
        return None

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        pieces = [self._pieces(t) for t in texts]
        flat = [p for ps in pieces for p in ps]
        probs = iter(p_injection(flat))
        out = []
        for text, ps in zip(texts, pieces):
            p = max(next(probs) for _ in ps)
            r = rule_hits(text).score if self.rules else 0.0
            top = max(p, r)
            out.append({"injection": top, "flag": float(top > 0.5), "classifier": p, "rules": r})
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
