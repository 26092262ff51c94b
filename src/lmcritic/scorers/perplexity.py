"""Input perplexity under a scoring language model: log-perplexity (mean token NLL) and the largest token
surprisal (character-level adversarial edits leave a few very unlikely tokens), the two statistics of the
``robustness.detect`` perplexity detector. Needs a backend with ``rolling_logprobs``; put it behind
:class:`lmcritic.store.cache.CachedBackend` to cache the calls."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from lmcritic.requests import Capability, RollingRequest
from lmcritic.scorers import Scorer

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend


def nll_stats(lm: Backend, texts: Sequence[str]) -> list[dict[str, float]]:
    """Mean and max per-token NLL of each text (one batched rolling_logprobs call, distinct texts once)."""
    unique = list(dict.fromkeys(texts))
    res = dict(zip(unique, lm.rolling_logprobs([RollingRequest(t) for t in unique])))
    out = []
    for t in texts:
        lps = np.asarray(res[t].logprobs, float)
        out.append({"mean_nll": float(-lps.mean()), "max_nll": float(-lps.min())} if len(lps) else
                   {"mean_nll": 0.0, "max_nll": 0.0})
    return out


class PerplexityScorer(Scorer):
    """``mean_nll`` (primary, log-perplexity) and ``max_nll`` under ``backend``; empty texts score 0."""

    name = "perplexity"
    primary = "mean_nll"
    batch_size = 32

    def __init__(self, backend: Backend | None) -> None:
        self.backend = backend

    def not_applicable(self) -> str | None:
        if self.backend is None:
            return "perplexity needs a scoring model (give the monitor a model)"
        if not self.backend.supports(Capability.ROLLING_LOGPROBS):
            return f"the {self.backend.kind} backend has no rolling_logprobs to score perplexity with"
        return None

    def _score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        assert self.backend is not None, "not_applicable() said why this scorer cannot run"
        keep = [t for t in texts if t.strip()]
        stats = dict(zip(keep, nll_stats(self.backend, keep))) if keep else {}
        return [stats.get(t, {"mean_nll": 0.0, "max_nll": 0.0}) for t in texts]


__all__ = ["PerplexityScorer", "nll_stats"]
