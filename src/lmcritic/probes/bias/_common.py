"""Shared pieces of the bias probes: per-group estimates, tests, plots and severities."""
from __future__ import annotations

import random
from typing import Any, Callable, Iterable, Sequence, TypeVar

from lmcritic.plots import bars  # noqa: F401 - re-exported: the bias probes' plots
from lmcritic.probes.base import Estimate

T = TypeVar("T")


def sample(items: Sequence[T], n: int | None, seed: int) -> list[T]:
    """A seeded random subset of ``n`` items in their original order (all when n is None or larger)."""
    if n is None or n >= len(items):
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in keep]


def by(records: Iterable[T], key: Callable[[T], Any]) -> dict[Any, list[T]]:
    out: dict[Any, list[T]] = {}
    for r in records:
        out.setdefault(key(r), []).append(r)
    return dict(sorted(out.items(), key=lambda kv: str(kv[0])))


def binom_p(k: int, n: int, p: float = 0.5) -> float:
    """Two-sided exact binomial test of k successes in n against ``p``."""
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(k, n, p).pvalue)


def sign_test(diffs: Sequence[float]) -> float:
    """Two-sided sign test that positive and negative differences are equally likely (zeros dropped)."""
    pos = sum(1 for d in diffs if d > 0)
    neg = sum(1 for d in diffs if d < 0)
    return binom_p(pos, pos + neg)


def diff_ci(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0) -> Estimate:
    """mean(a) − mean(b) for two independent samples, with a percentile bootstrap CI."""
    import numpy as np

    x, y = np.asarray(a, float), np.asarray(b, float)
    if not len(x) or not len(y):
        return Estimate(float("nan"), len(x) + len(y), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    bx = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)
    by_ = y[rng.integers(0, len(y), (n_boot, len(y)))].mean(1)
    lo, hi = np.quantile(bx - by_, [0.025, 0.975])
    return Estimate(float(x.mean() - y.mean()), len(x) + len(y), float(lo), float(hi), "bootstrap")


def common_prefix(a: str, b: str) -> str:
    """The longest shared prefix of two sentences, cut back to a word boundary (for explain targets)."""
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    while i > 0 and not a[i - 1].isspace():
        i -= 1
    return a[:i].rstrip()  # the space goes with the continuation (lm-eval convention)


def rounded(x: float, digits: int = 4) -> float:
    return float(round(x, digits))
