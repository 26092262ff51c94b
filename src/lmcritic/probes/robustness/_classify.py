"""Sentiment predictions for the robustness suite, shared by its probes.

A causal LM is asked by prompted classification exactly as ``performance.sst2`` does (same template and
label words, via its helpers), so clean accuracy here matches that probe; a classifier-head backend is
asked directly. Each prediction carries the explanation target other areas attach attributions to.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from lmcritic.backends.base import Backend
from lmcritic.probes._label_map import positive_prob
from lmcritic.probes.base import ExplainTarget
from lmcritic.probes.performance.sst2 import LABELS, SST2Accuracy
from lmcritic.requests import Capability, ClassifyRequest, LoglikelihoodRequest


@dataclass(frozen=True)
class Prediction:
    label: str
    p_positive: float
    explain: ExplainTarget  # for the expected label against the other (no span: the record sets it)

    def p(self, label: str) -> float:
        return self.p_positive if label == "positive" else 1.0 - self.p_positive


def sst2_helper(data: str | None, template: str, label_words: tuple[str, ...]) -> SST2Accuracy:
    """The SST-2 probe configured like ours: its row reader and prompt renderer are reused."""
    return SST2Accuracy(data=data, n=None, template=template, label_words=tuple(label_words))


def not_applicable(model: Backend) -> str | None:
    from lmcritic.probes._label_map import sentiment_head_reason

    if Capability.LOGLIKELIHOOD in model.capabilities or Capability.CLASSIFY in model.capabilities:
        return sentiment_head_reason(model)
    return f"needs loglikelihood (prompted classification) or classify; the {model.kind} backend offers neither"


def predict(model: Backend, texts: Sequence[str], sst2: SST2Accuracy, expected: Sequence[str]) -> list[Prediction]:
    """One prediction per text, batched in a single backend call."""
    if Capability.LOGLIKELIHOOD in model.capabilities:
        return _prompted(model, texts, sst2, expected)
    return _classifier(model, texts, expected)


def _prompted(model: Backend, texts: Sequence[str], sst2: SST2Accuracy, expected: Sequence[str]) -> list[Prediction]:
    words = sst2.config.label_words
    prompts = [sst2._render(t) for t in texts]
    results = model.loglikelihood([LoglikelihoodRequest(p, w) for p in prompts for w in words])
    out = []
    for i, (prompt, truth) in enumerate(zip(prompts, expected)):
        neg, pos = results[2 * i].logprob, results[2 * i + 1].logprob
        p_pos = 1.0 / (1.0 + math.exp(neg - pos))
        k = LABELS.index(truth)
        out.append(Prediction(LABELS[int(p_pos > 0.5)], p_pos, ExplainTarget(prompt, words[k], words[1 - k])))
    return out


def _classifier(model: Backend, texts: Sequence[str], expected: Sequence[str]) -> list[Prediction]:
    results = model.classify([ClassifyRequest(t) for t in texts])
    out = []
    for text, truth, r in zip(texts, expected, results):
        p_pos = positive_prob(r.labels, r.probs)
        out.append(Prediction(LABELS[int(p_pos > 0.5)], p_pos, ExplainTarget(text, truth, kind="label")))
    return out


def detokenize(text: str) -> str:
    """Undo SST's Penn-Treebank spacing ("does n't", "film 's", "good ." ) so inputs read like real text."""
    import re

    t = re.sub(r" (n't|'s|'re|'ve|'d|'ll|'m)\b", r"\1", text.strip())
    t = re.sub(r" ([.,!?;:%)\]])", r"\1", t)
    t = re.sub(r"([(\[]) ", r"\1", t)
    t = t.replace("`` ", '"').replace(" ''", '"').replace("-lrb- ", "(").replace(" -rrb-", ")")
    return t
