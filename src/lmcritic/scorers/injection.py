"""Prompt-injection likelihood from the ``prompt-guardrail`` classifier (module ``guardify``), the detector
``robustness.injection`` reports on: ``injection`` = P(injection) of the text, ``flag`` = its own decision."""
from __future__ import annotations

import importlib.util
import warnings

from lmcritic.scorers import Scorer


class PromptGuardScorer(Scorer):
    name = "injection"
    primary = "injection"
    batch_size = 256

    def not_applicable(self) -> str | None:
        if importlib.util.find_spec("guardify") is None:
            return "prompt-guardrail is not installed (pip install 'lmcritic[robustness]')"
        return None

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its pickled sklearn model warns about the version
            import guardify

            found = [guardify.detect(t) for t in texts]
        out = []
        for o in found:
            flagged = o["label"] == "injection"
            p = float(o["score"] if flagged else 1 - o["score"])
            out.append({"injection": p, "flag": float(flagged)})
        return out


__all__ = ["PromptGuardScorer"]
