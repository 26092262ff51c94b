"""Metrics: corpus-level functions over aligned columns, with case-resampling bootstrap CIs.

A metric names the columns it reads (``predictions``, ``references``, ``probs``, ``labels`` ...), so
:func:`estimate` can resample *cases* and recompute it — which gives honest CIs even for corpus-level
metrics such as macro-F1, ECE or BLEU that are not means of per-case scores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lmcritic.errors import ConfigError
from lmcritic.probes.base import Estimate
from lmcritic.registry import Registry


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[..., float]
    inputs: tuple[str, ...]
    higher_is_better: bool = True
    description: str = ""

    def __call__(self, **columns: Sequence[Any]) -> float:
        return float(self.fn(**{k: columns[k] for k in self.inputs}))


METRICS: Registry[Metric] = Registry("metrics", instance_of=Metric)


def metric(name: str, inputs: tuple[str, ...], higher_is_better: bool = True) -> Callable:
    """Decorator: register a corpus-level function as a metric."""

    def deco(fn: Callable[..., float]) -> Callable[..., float]:
        METRICS.add(name, Metric(name, fn, inputs, higher_is_better, (fn.__doc__ or "").strip()))
        return fn

    return deco


def estimate(name: str, columns: Mapping[str, Sequence[Any]], n_boot: int = 1000, seed: int = 0) -> Estimate:
    """The metric on all cases plus a percentile bootstrap CI over cases."""
    m = METRICS.get(name)
    missing = [c for c in m.inputs if c not in columns]
    if missing:
        raise ConfigError(f"metric {name!r} needs column(s) {', '.join(missing)}")
    cols = {k: list(columns[k]) for k in m.inputs}
    n = len(cols[m.inputs[0]])
    point = m(**cols)
    if n == 0:
        return Estimate(float("nan"), 0, float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boot = [m(**{k: [v[i] for i in row] for k, v in cols.items()}) for row in idx]
    lo, hi = np.nanquantile(boot, [0.025, 0.975])
    return Estimate(point, n, float(lo), float(hi), "bootstrap")


# Built-in metrics register on import of these modules (cheap: NumPy only).
from lmcritic.metrics import calibration as _calibration  # noqa: E402,F401
from lmcritic.metrics import classification as _classification  # noqa: E402,F401
from lmcritic.metrics import generation as _generation  # noqa: E402,F401

__all__ = ["METRICS", "Metric", "estimate", "metric"]
