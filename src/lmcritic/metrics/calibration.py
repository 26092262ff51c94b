"""Calibration: is the model's confidence worth believing? ECE, Brier, reliability bins, accuracy at coverage."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from lmcritic.metrics import metric


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> list[dict]:
    """Equal-width confidence bins: count, mean confidence and accuracy of each (the reliability diagram)."""
    conf = np.asarray(confidences, float)
    ok = np.asarray(correct, float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
                     "confidence": float(conf[mask].mean()) if count else None,
                     "accuracy": float(ok[mask].mean()) if count else None})
    return bins


@metric("ece", ("confidences", "correct"), higher_is_better=False)
def ece(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """Expected calibration error: count-weighted |accuracy − confidence| over 10 equal-width bins."""
    n = len(confidences)
    if n == 0:
        return float("nan")
    return sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
               for b in reliability_bins(confidences, correct, n_bins) if b["count"])


@metric("brier", ("probs", "labels"), higher_is_better=False)
def brier(probs: Sequence[Sequence[float]], labels: Sequence[int]) -> float:
    """Multi-class Brier score: mean squared distance between the probability vector and the one-hot truth."""
    p = np.asarray(probs, float)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(labels)), np.asarray(labels, int)] = 1.0
    return float(((p - onehot) ** 2).sum(1).mean()) if len(p) else float("nan")


def accuracy_at_coverage(confidences: Sequence[float], correct: Sequence[bool],
                         coverages: Sequence[float] = (0.25, 0.5, 0.75, 1.0)) -> dict[float, float]:
    """Accuracy on the most confident fraction of cases (selective prediction)."""
    order = np.argsort(-np.asarray(confidences, float), kind="stable")
    ok = np.asarray(correct, float)[order]
    return {c: float(ok[: max(1, int(round(c * len(ok))))].mean()) for c in coverages} if len(ok) else {}
