"""Predictions for the robustness suite and attacks, shared by their probes.

A causal LM is asked by prompted classification exactly as ``performance.sst2`` does (same template and
label words, via its helpers), so clean accuracy here matches that probe; a classifier-head backend is
asked directly. Each prediction carries the explanation target other areas attach attributions to.

Sentiment is the default. Given ``classes`` (a classifier of another task: a topic, intent or toxicity head,
``scan --data`` sets them to the head's labels), the rows' labels are those classes (names, or the head's ids)
and a prediction is the head's most probable class: a meaning-preserving edit or an attack is a class flip on
any label set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lmcritic.backends.base import Backend
from lmcritic.probes._label_map import class_probs, label_index, positive_prob
from lmcritic.probes.base import ExplainTarget
from lmcritic.probes.performance.sst2 import LABELS, SST2Accuracy
from lmcritic.requests import Capability, ClassifyRequest, LoglikelihoodRequest


@dataclass(frozen=True)
class Prediction:
    label: str
    probs: Mapping[str, float]  # class -> probability
    explain: ExplainTarget  # for the expected label against the other (no span: the record sets it)

    def p(self, label: str) -> float:
        return float(self.probs.get(label, 0.0))

    @property
    def p_positive(self) -> float:
        return self.p("positive")


def sentiment(p_positive: float) -> dict[str, float]:
    return {"negative": 1.0 - p_positive, "positive": p_positive}


def sst2_helper(data: str | None, template: str, label_words: tuple[str, ...]) -> SST2Accuracy:
    """The SST-2 probe configured like ours: its row reader and prompt renderer are reused."""
    return SST2Accuracy(data=data, n=None, template=template, label_words=tuple(label_words))


def not_applicable(model: Backend, classes: Sequence[str] | None = None) -> str | None:
    from lmcritic.probes._label_map import sentiment_head_reason

    if classes:
        return own_classes_reason(model, classes)
    if Capability.LOGLIKELIHOOD in model.capabilities or Capability.CLASSIFY in model.capabilities:
        return sentiment_head_reason(model)
    return f"needs loglikelihood (prompted classification) or classify; the {model.kind} backend offers neither"


def own_classes_reason(model: Backend, classes: Sequence[str]) -> str | None:
    """Why a probe set to a classifier's own ``classes`` cannot read this model (None when it can)."""
    from lmcritic.errors import ConfigError
    from lmcritic.probes._label_map import classifier_labels

    labels = classifier_labels(model)
    if labels is None:
        return (f"set to a classifier's classes ({', '.join(classes)}), and the {model.kind} backend has no "
                "classifier head (classify without log-likelihoods)")
    try:
        label_index(labels, classes)
    except ConfigError:  # its hint names label_map, an option these probes do not have
        return (f"the classifier's labels ({', '.join(labels)}) are not the classes it is set to "
                f"({', '.join(classes)}): set PROBE.classes to the classifier's labels")
    return None


def rows(sst2: SST2Accuracy, classes: Sequence[str] | None) -> list[dict[str, Any]]:
    """The labelled rows (``label``: an index into ``classes``, else into negative/positive)."""
    if not classes:
        return sst2._rows()
    from lmcritic.datasets import read_rows, skip_row
    from lmcritic.errors import ConfigError
    from lmcritic.probes._label_map import class_index

    path = sst2.config.data
    if path is None:
        raise ConfigError(f"classes {list(classes)} are set, and no data: the packaged rows are SST-2 sentiment",
                          "give the rows of the classifier's task: data: PATH (scan --data PATH)")
    out = []
    for line, row in read_rows(path, required=("label",), labelled=True):
        text, k = row.get("sentence") or row.get("text"), class_index(str(row["label"]), classes)
        if not text or k is None:
            skip_row(path, line, f"needs a 'text' column and a label among {', '.join(classes)} (or its id)")
            continue
        out.append({"text": text.strip(), "label": k, "source": str(path), "source_line": line})
    return out


def predict(model: Backend, texts: Sequence[str], sst2: SST2Accuracy, expected: Sequence[str],
            classes: Sequence[str] | None = None) -> list[Prediction]:
    """One prediction per text, batched in a single backend call."""
    if classes:
        return _own_classes(model, texts, expected, classes)
    if Capability.LOGLIKELIHOOD in model.capabilities:
        return _prompted(model, texts, sst2, expected)
    return _classifier(model, texts, expected)


def _own_classes(model: Backend, texts: Sequence[str], expected: Sequence[str],
                 classes: Sequence[str]) -> list[Prediction]:
    """A classifier head's most probable class of ``classes`` (its labels summed into them)."""
    results = model.classify([ClassifyRequest(t) for t in texts])
    out = []
    for text, truth, r in zip(texts, expected, results):
        mapping = label_index(r.labels, classes)
        probs = class_probs(r.labels, r.probs, mapping, len(classes))
        label = classes[max(range(len(classes)), key=probs.__getitem__)]
        head = next((h for h in r.labels if classes[mapping[h]] == truth), truth)  # explained as the head names it
        out.append(Prediction(label, dict(zip(classes, probs)), ExplainTarget(text, head, kind="label")))
    return out


def _prompted(model: Backend, texts: Sequence[str], sst2: SST2Accuracy, expected: Sequence[str]) -> list[Prediction]:
    words = sst2.config.label_words
    prompts = [sst2._render(t) for t in texts]
    results = model.loglikelihood([LoglikelihoodRequest(p, w) for p in prompts for w in words])
    out = []
    for i, (prompt, truth) in enumerate(zip(prompts, expected)):
        neg, pos = results[2 * i].logprob, results[2 * i + 1].logprob
        p_pos = 1.0 / (1.0 + math.exp(neg - pos))
        k = LABELS.index(truth)
        target = ExplainTarget(prompt, words[k], words[1 - k])
        out.append(Prediction(LABELS[int(p_pos > 0.5)], sentiment(p_pos), target))
    return out


def _classifier(model: Backend, texts: Sequence[str], expected: Sequence[str]) -> list[Prediction]:
    results = model.classify([ClassifyRequest(t) for t in texts])
    out = []
    for text, truth, r in zip(texts, expected, results):
        p_pos = positive_prob(r.labels, r.probs)
        out.append(Prediction(LABELS[int(p_pos > 0.5)], sentiment(p_pos), ExplainTarget(text, truth, kind="label")))
    return out


def detokenize(text: str) -> str:
    """Undo SST's Penn-Treebank spacing ("does n't", "film 's", "good ." ) so inputs read like real text."""
    import re

    t = re.sub(r" (n't|'s|'re|'ve|'d|'ll|'m)\b", r"\1", text.strip())
    t = re.sub(r" ([.,!?;:%)\]])", r"\1", t)
    t = re.sub(r"([(\[]) ", r"\1", t)
    t = t.replace("`` ", '"').replace(" ''", '"').replace("-lrb- ", "(").replace(" -rrb-", ")")
    return t
