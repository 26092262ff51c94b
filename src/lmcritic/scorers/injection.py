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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its pickled sklearn model warns about the version
            import guardify

            out = []
            for text in texts:
                p = max(_p_injection(guardify.detect(piece)) for piece in self._pieces(text))
                out.append({"injection": p, "flag": float(p > 0.5)})
        return out

    def _pieces(self, text: str) -> list[str]:
        if not self.segments:
            return [text]
        parts = [s.strip() for s in SEGMENT.split(text) if len(s.strip()) >= MIN_SEGMENT_CHARS]
        return [text] + (parts if len(parts) > 1 else [])


def _p_injection(out: dict) -> float:
    return float(out["score"] if out["label"] == "injection" else 1 - out["score"])


__all__ = ["PromptGuardScorer"]
