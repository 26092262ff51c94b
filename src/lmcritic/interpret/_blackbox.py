"""Black-box scoring of many edited inputs in one batched backend call.

The explained quantity matches the white-box one: a classifier's label log-prob (minus the foil label's),
or log P(target | context) (minus the foil's) from ``loglikelihood``. Every edited text goes into one list,
so the backend batches (and the run's cache stores) them all at once.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from lmcritic.interpret.types import Target, label_position
from lmcritic.requests import ClassifyRequest, LoglikelihoodRequest

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend


def log_scores(model: Backend, target: Target, texts: Sequence[str]) -> list[float]:
    """f(text) for every text, with ``target``'s target and foil, in one backend call."""
    if target.kind == "label":
        return _label_scores(model, target, texts)
    conts = [target.target] + ([target.foil] if target.foil is not None else [])
    reqs = [LoglikelihoodRequest(t, c) for t in texts for c in conts]
    res = model.loglikelihood(reqs)
    k = len(conts)
    return [res[i * k].logprob - (res[i * k + 1].logprob if k == 2 else 0.0) for i in range(len(texts))]


def _label_scores(model: Backend, target: Target, texts: Sequence[str]) -> list[float]:
    res = model.classify([ClassifyRequest(t if t.strip() else " ") for t in texts])
    out = []
    for r in res:
        want = label_position(r.labels, target.target)
        foil = label_position(r.labels, target.foil) if target.foil is not None else None
        out.append(_log(r.probs[want]) - (_log(r.probs[foil]) if foil is not None else 0.0))
    return out


def _log(p: float) -> float:
    return math.log(max(p, 1e-30))


def to_units(target: Target, log_score: float) -> tuple[float, str]:
    """ERASER works on probabilities: a label's probability, or the target's share against its foil
    (sigmoid of the log-odds). A continuation without a foil stays a log-probability."""
    if target.kind == "label" and target.foil is None:
        return math.exp(log_score), "probability"
    if target.foil is not None:
        return 1.0 / (1.0 + math.exp(-max(-700.0, min(700.0, log_score)))), "probability"
    return log_score, "logprob"
