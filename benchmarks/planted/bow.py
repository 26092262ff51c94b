"""A bag-of-words sentiment model trained in about a second, served as a real log-likelihood backend.

Logistic regression on binary unigram+bigram counts (scikit-learn) decides between the SST-2 probe's label
words; a unigram language model with add-one smoothing, fit on the same training text, gives rolling
log-probs, so the model has its own input perplexity (unknown words are expensive, as for any LM). Saved as
one JSON file, fingerprinted by its content, loaded with ``BowSentiment.load(path)``.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from lmcritic._serde import stable_hash
from lmcritic.backends.base import Backend
from lmcritic.mitigate.trainers import ModelTrainer, Trained
from lmcritic.requests import Capability, LoglikelihoodRequest, LoglikelihoodResult, RollingRequest, RollingResult

_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")
_TEXT = re.compile(r"Review: (.*)\nSentiment:\s*$", re.S)


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def train(rows: Sequence[tuple[str, int]], C: float = 1.0, bigrams: bool = True,
          weights: Sequence[float] | None = None) -> dict:
    """Fit the classifier (``weights``: per-row sample weights) and the unigram LM; returns the JSON-able model."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = CountVectorizer(tokenizer=tokens, lowercase=False, binary=True, token_pattern=None,
                          ngram_range=(1, 2 if bigrams else 1))
    x = vec.fit_transform([t for t, _ in rows])
    clf = LogisticRegression(C=C, max_iter=2000).fit(x, [y for _, y in rows], sample_weight=weights)
    names = vec.get_feature_names_out()
    weights = {str(n): float(w) for n, w in zip(names, clf.coef_[0]) if abs(w) > 1e-6}
    counts = Counter(t for text, _ in rows for t in tokens(text))
    return {"weights": weights, "bias": float(clf.intercept_[0]), "counts": dict(counts), "bigrams": bigrams}


class BowSentiment(Backend):
    kind = "planted-bow"

    def __init__(self, model: dict | str, name: str = "bow") -> None:
        if isinstance(model, str):  # a saved model's path: how the backend registry builds it from a model spec
            name, model = Path(model).stem if name == "bow" else name, json.loads(Path(model).read_text())
        self.model, self.name = model, name
        self.total = sum(model["counts"].values())
        self.vocab = len(model["counts"]) + 1
        self._fp = stable_hash("bow", model)

    @classmethod
    def load(cls, path: str | Path) -> "BowSentiment":
        return cls(json.loads(Path(path).read_text()), name=Path(path).stem)

    def save(self, path: str | Path) -> Path:
        Path(path).write_text(json.dumps(self.model))
        return Path(path)

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.LOGLIKELIHOOD, Capability.ROLLING_LOGPROBS})

    def fingerprint(self) -> str:
        return self._fp

    def describe(self) -> dict:
        return {**super().describe(), "name": self.name}

    def logit(self, text: str) -> float:
        toks = tokens(text)
        feats = set(toks)
        if self.model["bigrams"]:
            feats |= {f"{a} {b}" for a, b in zip(toks, toks[1:])}
        return self.model["bias"] + sum(self.model["weights"].get(f, 0.0) for f in feats)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        out = []
        for r in requests:
            m = _TEXT.search(r.context)
            z = self.logit(m.group(1) if m else r.context)
            sign = 1.0 if r.continuation.strip() == "positive" else -1.0
            out.append(LoglikelihoodResult(-math.log1p(math.exp(-sign * z)), sign * z > 0, 1))
        return out

    def rolling_logprobs(self, requests: Sequence[RollingRequest]) -> list[RollingResult]:
        out = []
        for r in requests:
            spans = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(r.text.lower())]
            lps = [math.log((self.model["counts"].get(t, 0) + 1) / (self.total + self.vocab)) for t, _, _ in spans]
            out.append(RollingResult(tuple(range(len(spans))), tuple(t for t, _, _ in spans), tuple(lps),
                                     tuple((a, b) for _, a, b in spans)))
        return out


def register() -> None:
    """Make saved bag-of-words models loadable from a model spec (backend ``planted-bow``, name = the JSON path)
    and retrainable by training-time mitigations (trainer ``planted-bow``)."""
    from lmcritic.backends import BACKENDS
    from lmcritic.mitigate.trainers import TRAINERS

    if "planted-bow" not in BACKENDS:
        BACKENDS.add("planted-bow", "bow:BowSentiment")
    if "planted-bow" not in TRAINERS:
        TRAINERS.add("planted-bow", "bow:BowTrainer")


class BowTrainer(ModelTrainer):
    """Retrains the bag-of-words model from scratch on a mitigation's rows, honouring row weights."""

    def train(self, base, data, task, out, config, seed=0, progress=True):
        import time

        labels = list(task.labels or data.labels)
        rows = [(r.text, labels.index(str(r.label))) for r in data.rows]
        t0 = time.perf_counter()
        model = train(rows, weights=[r.weight for r in data.rows])
        path = Path(out) / "model" / "model.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(model))
        details = {"kind": "bag-of-words LR", "adapter": "full", "steps": 1,
                   "wall_s": round(time.perf_counter() - t0, 2), "n_examples": len(rows)}
        return Trained({"name": str(path), "backend": "planted-bow"}, str(path.parent), details)
