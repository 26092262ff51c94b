"""Calibration of a model's label scores: contextual calibration and temperature scaling.

The wrapper maps each label's score ``s_k`` (the log-likelihood of a label word after the prompt, or the log of a
classifier's probability) to ``(s_k − b_k) / T``. With ``b`` the log of the model's label distribution on
content-free inputs ("N/A", "[MASK]", "") this is contextual calibration (Zhao et al. 2021, "Calibrate before
use"): the prior the training objective built in is divided out. ``T`` is temperature scaling (Guo et al.
2017), fitted by likelihood on held-out labelled data; ``b`` can be fitted there too (``method="fitted"``,
class-balanced so an imbalanced held-out set does not teach the skew back). Only requests whose continuation is
one of the calibrated label words (or classifications with those labels) change; everything else passes through.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from lmcritic.backends.base import Backend
from lmcritic.errors import ConfigError
from lmcritic.mitigate.wrappers import WrapperBackend
from lmcritic.requests import ClassifyRequest, ClassifyResult, LoglikelihoodRequest, LoglikelihoodResult


class CalibratedBackend(WrapperBackend):
    """``label_words`` (log-likelihood label continuations) or ``labels`` (classifier labels), each with a bias."""

    kind = "calibrate"

    def __init__(self, inner: Backend, label_words: Sequence[str] | None = None, labels: Sequence[str] | None = None,
                 bias: Sequence[float] | None = None, temperature: float = 1.0, method: str = "") -> None:
        names = list(label_words or labels or ())
        if len(names) < 2 or bool(label_words) == bool(labels):
            raise ConfigError("calibrate needs either label_words (>= 2 continuations) or labels (>= 2 names)")
        b = [float(x) for x in (bias if bias is not None else [0.0] * len(names))]
        if len(b) != len(names) or not all(math.isfinite(x) for x in b):
            raise ConfigError(f"calibrate: bias needs {len(names)} finite numbers, got {bias!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ConfigError(f"calibrate: temperature must be a finite number > 0, got {temperature!r}")
        self.words = list(label_words) if label_words else None
        self.labels = list(labels) if labels else None
        self.bias, self.temperature = b, float(temperature)
        super().__init__(inner, {"label_words": self.words, "labels": self.labels, "bias": b,
                                 "temperature": self.temperature, "method": method})

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        results = self.inner.loglikelihood(requests)
        if not self.words:
            return results
        index = {w: k for k, w in enumerate(self.words)}
        out, actions = [], []
        for req, res in zip(requests, results):
            k = index.get(req.continuation)
            actions.append({"calibrated": k is not None})
            out.append(res if k is None else replace(res, logprob=(res.logprob - self.bias[k]) / self.temperature))
        self.note(actions)
        return out

    def classify(self, requests: Sequence[ClassifyRequest]) -> list[ClassifyResult]:
        results = self.inner.classify(requests)
        if not self.labels:
            return results
        out, actions = [], []
        for res in results:
            ok = sorted(res.labels) == sorted(self.labels)
            actions.append({"calibrated": ok})
            out.append(self._recalibrate(res) if ok else res)
        self.note(actions)
        return out

    def _recalibrate(self, res: ClassifyResult) -> ClassifyResult:
        bias = dict(zip(self.labels or (), self.bias))
        z = np.array([(math.log(max(p, 1e-30)) - bias[lab]) / self.temperature
                      for lab, p in zip(res.labels, res.probs)])
        return ClassifyResult(res.labels, tuple(softmax(z).tolist()))


# -- fitting -----------------------------------------------------------------------------------------
def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def nll(scores: np.ndarray, y: np.ndarray, bias: np.ndarray, temperature: float,
        weights: np.ndarray | None = None) -> float:
    """Mean (weighted) negative log-likelihood of the true labels after calibration."""
    z = (scores - bias) / temperature
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    w = np.ones(len(y)) if weights is None else weights
    return float(-(w * logp[np.arange(len(y)), y]).sum() / w.sum())


def balanced_weights(y: np.ndarray, k: int) -> np.ndarray:
    """Each class weighs the same in total (the held-out set's own label skew is not learnt)."""
    counts = np.bincount(y, minlength=k).astype(float)
    return len(y) / (k * np.maximum(counts[y], 1.0))


def fit_temperature(scores: np.ndarray, y: np.ndarray, bias: np.ndarray) -> float:
    """The temperature minimising held-out NLL (bounded search over log T)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda lt: nll(scores, y, bias, math.exp(lt)), bounds=(-4.0, 4.0), method="bounded")
    return float(math.exp(res.x))


def fit_bias_temperature(scores: np.ndarray, y: np.ndarray, balanced: bool = True) -> tuple[np.ndarray, float]:
    """Per-label bias (the first fixed at 0) and temperature minimising (class-balanced) held-out NLL."""
    from scipy.optimize import minimize

    k = scores.shape[1]
    w = balanced_weights(y, k) if balanced else None

    def loss(theta: np.ndarray) -> float:
        return nll(scores, y, np.concatenate([[0.0], theta[1:]]), math.exp(theta[0]), w)

    res = minimize(loss, np.zeros(k), method="L-BFGS-B", bounds=[(-4.0, 4.0)] + [(-50.0, 50.0)] * (k - 1))
    return np.concatenate([[0.0], res.x[1:]]), float(math.exp(res.x[0]))


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top label (equal-width bins)."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.sum() / len(y) * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(total)


def summary(scores: np.ndarray, y: np.ndarray, bias: np.ndarray, temperature: float) -> dict[str, Any]:
    """Held-out accuracy, predicted-label shares, NLL and ECE after calibration."""
    p = softmax((scores - bias) / temperature)
    k = scores.shape[1]
    return {"accuracy": float((p.argmax(1) == y).mean()), "nll": nll(scores, y, bias, temperature),
            "ece": ece(p, y), "predicted_share": (np.bincount(p.argmax(1), minlength=k) / max(1, len(y))).tolist(),
            "n": int(len(y))}


__all__ = ["CalibratedBackend", "balanced_weights", "ece", "fit_bias_temperature", "fit_temperature", "nll",
           "softmax", "summary"]
