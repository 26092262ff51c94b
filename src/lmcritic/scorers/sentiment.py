"""VADER sentiment (Hutto & Gilbert 2014): a lexicon and rules, fast and offline, the scorer BOLD uses.

``compound`` is in [−1, 1]; ``sentiment`` = (compound + 1) / 2 is the [0, 1] primary score (higher = more
positive). BOLD's convention labels a text positive at compound ≥ 0.5 and negative at ≤ −0.5.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from lmcritic.scorers import Scorer


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


class VaderScorer(Scorer):
    name = "vader"
    primary = "sentiment"
    languages = frozenset({"en"})
    batch_size = 1024

    def not_applicable(self) -> str | None:
        import importlib.util

        if importlib.util.find_spec("vaderSentiment") is None:
            return "vaderSentiment is not installed (pip install 'lmcritic[bias]')"
        return None

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        sia = _analyzer()
        out = []
        for t in texts:
            s = sia.polarity_scores(t)
            out.append({"sentiment": (s["compound"] + 1) / 2, "compound": s["compound"], "pos": s["pos"],
                        "neg": s["neg"], "neu": s["neu"]})
        return out


__all__ = ["VaderScorer"]
