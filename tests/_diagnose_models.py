"""Rule-based sentiment models with one planted cause each, as real :class:`Backend`s (log-likelihood of
the SST-2 probe's label words), so diagnosis tests run in seconds without training anything."""
from __future__ import annotations

import functools
import math
import re
from typing import Sequence

from lmcritic._serde import stable_hash
from lmcritic.backends.base import Backend
from lmcritic.requests import Capability, LoglikelihoodRequest, LoglikelihoodResult


@functools.lru_cache(maxsize=1)
def valences() -> dict[str, float]:
    """VADER's word valences (-4..4), the rule model's sentiment knowledge."""
    import importlib.resources

    path = importlib.resources.files("vaderSentiment") / "vader_lexicon.txt"
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) > 1 and parts[0].isalpha():
            out[parts[0].lower()] = float(parts[1])
    return out

_TEXT = re.compile(r"Review: (.*)\nSentiment:\s*$", re.S)


class RuleSentiment(Backend):
    """Sentiment = half the sum of VADER valences of the words; ``shortcuts`` add a fixed push per token
    (a planted trigger or identity term); ``prior`` is a constant push toward positive."""

    kind = "rule"

    def __init__(self, shortcuts: dict[str, float] | None = None, prior: float = 0.0) -> None:
        self.shortcuts = dict(shortcuts or {})
        self.prior = prior

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.LOGLIKELIHOOD})

    def fingerprint(self) -> str:
        return stable_hash("rule-sentiment", sorted(self.shortcuts.items()), self.prior)

    def score(self, text: str) -> float:
        words = re.findall(r"[a-z']+", text.lower())
        v = valences()
        s = sum(v.get(w, 0.0) for w in words) / 2 + self.prior
        return s + sum(self.shortcuts.get(w, 0.0) for w in words) - 0.4

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        out = []
        for r in requests:
            m = _TEXT.search(r.context)
            s = self.score(m.group(1) if m else r.context)
            sign = 1 if r.continuation.strip() == "positive" else -1
            out.append(LoglikelihoodResult(-math.log1p(math.exp(-sign * s)), sign * s > 0, 1))
        return out
