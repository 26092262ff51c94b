"""A classifier head's labels matched to a task's classes, in one place for every probe that calls ``classify``.

Rules, in order: an explicit ``label_map`` (model label → class name, class value or label word); the same
name ignoring case (``POSITIVE`` → positive, or a class value such as ``1``); a name that is a prefix of exactly
one class (``neg`` → negative); Hugging Face's default ``LABEL_i`` (or a bare ``i``) → the i-th class when the head
has as many labels as the task has classes. Anything else is a :class:`ConfigError` that names the labels on both
sides and the option to set, before any case is scored.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Mapping, Sequence

from lmcritic.errors import ConfigError

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend

_INDEX = re.compile(r"(?:label_?)?(\d+)", re.I)
SENTIMENT = ("negative", "positive")


def label_index(model_labels: Sequence[str], classes: Sequence[str], label_map: Mapping[str, str] | None = None,
                aliases: Mapping[str, int] | None = None) -> dict[str, int]:
    """Model label → index into ``classes``. ``aliases`` adds other names per class (values, label words)."""
    names = {str(c).strip().lower(): i for i, c in enumerate(classes)}
    names.update({str(k).strip().lower(): v for k, v in (aliases or {}).items()})
    out: dict[str, int] = {}
    for label in model_labels:
        target = (label_map or {}).get(label, label)
        idx = _match(str(target), names, len(model_labels), len(classes))
        if idx is None:
            raise ConfigError(f"classifier label {label!r} matches none of the task's classes "
                              f"({', '.join(map(str, classes))}); the model's labels are {list(model_labels)}",
                              "set label_map: {MODEL_LABEL: CLASS} (e.g. --set PROBE.label_map='{LABEL_1: positive}')")
        out[label] = idx
    return out


def _match(label: str, names: Mapping[str, int], n_model: int, n_classes: int) -> int | None:
    key = label.strip().lower()
    if key in names:
        return names[key]
    prefixed = {i for name, i in names.items() if name.startswith(key) and len(key) >= 3}
    if len(prefixed) == 1:
        return prefixed.pop()
    m = _INDEX.fullmatch(key)
    if m and n_model == n_classes and int(m.group(1)) < n_classes:
        return int(m.group(1))
    return None


def head_class(label: str, model_labels: Sequence[str], classes: Sequence[str]) -> int | None:
    """One head label's class index by the rules above (without a label_map); None when it matches none. For the
    readers of training files and the trainers, so ``NEG``/``POS`` heads are read as the probes read them."""
    names = {str(c).strip().lower(): i for i, c in enumerate(classes)}
    return _match(str(label), names, len(model_labels), len(classes))


def head_label(model_labels: Sequence[str], label: str, classes: Sequence[str] = SENTIMENT) -> str | None:
    """``label`` (one of ``classes``, or one of the head's own labels in any case) as the head names it, by the
    rules above (``positive`` -> ``LABEL_1``, ``POS``); None when no head label is that class. Records and
    explanation targets name classes; gradients and black-box scores need the head's own name."""
    low = [str(x).lower() for x in model_labels]
    if label.lower() in low:
        return str(model_labels[low.index(label.lower())])
    k = class_index(label, classes)
    named = [] if k is None else [m for m in model_labels if head_class(m, model_labels, classes) == k]
    return str(named[0]) if named else None


def class_index(label: str, classes: Sequence[str]) -> int | None:
    """A row's label as an index into ``classes``: its name in any case, a prefix only one class has, or its id."""
    names = {str(c).strip().lower(): i for i, c in enumerate(classes)}
    return _match(label, names, len(classes), len(classes))


def class_probs(model_labels: Sequence[str], probs: Sequence[float], mapping: Mapping[str, int],
                n_classes: int) -> list[float]:
    """The head's probabilities summed into the task's classes."""
    out = [0.0] * n_classes
    for label, p in zip(model_labels, probs):
        out[mapping[label]] += float(p)
    return out



def positive_prob(model_labels: Sequence[str], probs: Sequence[float]) -> float:
    """P(positive) from a binary sentiment head (``positive``/``POSITIVE``/``pos``/``LABEL_1``/``1``)."""
    mapping = label_index(model_labels, SENTIMENT, None, {"0": 0, "1": 1})
    return class_probs(model_labels, probs, mapping, 2)[1]


def target_prob(model_labels: Sequence[str], probs: Sequence[float], target: str,
                classes: Sequence[str] | None = None) -> float:
    """P(``target``) from a classifier head: the label of that name, else the head's labels read as ``classes``
    (a head saying LABEL_k on a task of its own), else (sentiment) through :func:`positive_prob`."""
    names = [str(n).lower() for n in model_labels]
    if target.lower() in names:
        return float(probs[names.index(target.lower())])
    k = class_index(target, classes) if classes else None
    if classes and k is not None:
        return class_probs(model_labels, probs, label_index(model_labels, classes), len(classes))[k]
    if target in SENTIMENT:
        p = positive_prob(model_labels, probs)
        return p if target == "positive" else 1.0 - p
    raise ConfigError(f"target {target!r} is none of the classifier's labels {list(model_labels)}",
                      "set the probe's target to one of them")


def sentiment_head_reason(model: "Backend", label_map: Mapping[str, str] | None = None,
                          target: str | None = None) -> str | None:
    """Why a sentiment probe cannot read this model, decided before any case runs: a classifier head (no
    log-likelihoods) whose labels are not negative/positive, nor ``target``. None when it can."""
    labels = classifier_labels(model)
    if labels is None:
        return None
    if (target is not None and target.lower() in {str(x).lower() for x in labels}) or is_sentiment(labels, label_map):
        return None
    return (f"a sentiment probe, and the classifier's labels ({', '.join(map(str, labels))}) are not "
            "negative/positive (PROBE.label_map maps them if they are)")


def is_sentiment(labels: Sequence[str], label_map: Mapping[str, str] | None = None) -> bool:
    """Whether a classifier head's labels read as negative/positive (by name, ``label_map`` or ``LABEL_i``)."""
    try:
        label_index(labels, SENTIMENT, label_map, {"0": 0, "1": 1})
    except ConfigError:
        return False
    return True


def classifier_labels(model: "Backend") -> list[str] | None:
    """A classifier-head backend's label names in logit order (one call), else None."""
    from lmcritic.requests import Capability, ClassifyRequest

    if model.supports(Capability.LOGLIKELIHOOD) or not model.supports(Capability.CLASSIFY):
        return None
    return [str(x) for x in model.classify([ClassifyRequest("a")])[0].labels]
