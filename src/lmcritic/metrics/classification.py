"""Accuracy, macro-F1, exact match and token F1 (SQuAD-style normalisation)."""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any, Sequence

from lmcritic.metrics import metric


@metric("accuracy", ("predictions", "references"))
def accuracy(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    """Share of predictions equal to the reference."""
    return sum(p == r for p, r in zip(predictions, references)) / max(len(references), 1)


@metric("macro_f1", ("predictions", "references"))
def macro_f1(predictions: Sequence[Any], references: Sequence[Any]) -> float:
    """Unweighted mean of per-class F1 over the classes present in the references or predictions."""
    classes = sorted(set(references) | set(predictions), key=str)
    scores = []
    for c in classes:
        tp = sum(p == c and r == c for p, r in zip(predictions, references))
        fp = sum(p == c and r != c for p, r in zip(predictions, references))
        fn = sum(p != c and r == c for p, r in zip(predictions, references))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, articles and extra whitespace (SQuAD v1.1 evaluation script)."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


@metric("exact_match", ("predictions", "references"))
def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of answers equal to the reference after SQuAD normalisation."""
    return sum(normalize_answer(p) == normalize_answer(r) for p, r in zip(predictions, references)) / max(
        len(references), 1)


def token_f1_one(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@metric("token_f1", ("predictions", "references"))
def token_f1(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Mean SQuAD token-overlap F1."""
    return sum(token_f1_one(p, r) for p, r in zip(predictions, references)) / max(len(references), 1)
