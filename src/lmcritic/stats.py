"""Honest statistics: every headline figure gets n and a 95% CI; comparisons get p-values,
corrected for multiple testing. NumPy only, so importing this stays cheap."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from lmcritic.probes.base import Estimate

Z95 = 1.959963984540054


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (well-behaved at 0, 1 and small n)."""
    if n == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: rounding leaves ~1e-17 otherwise
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def proportion(flags: Sequence[bool], confidence: float = 0.95) -> Estimate:
    """Share of True with a Wilson interval."""
    n = len(flags)
    k = int(sum(bool(f) for f in flags))
    lo, hi = wilson(k, n, confidence)
    return Estimate(k / n if n else float("nan"), n, lo, hi, "wilson", confidence)


def bootstrap(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Estimate:
    """Percentile bootstrap CI of ``statistic`` over cases (seeded: the same data gives the same CI)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(float("nan"), 0, float("nan"), float("nan"), "bootstrap", confidence)
    point = float(statistic(x))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    stats = np.array([statistic(x[i]) for i in idx])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return Estimate(point, n, float(lo), float(hi), "bootstrap", confidence)


def mean(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean with a bootstrap CI."""
    return bootstrap(values, np.mean, confidence=confidence)


def ratio_of_sums(num: Sequence[float], den: Sequence[float], n_boot: int = 2000, seed: int = 0) -> Estimate:
    """sum(num)/sum(den) with a case-level bootstrap CI (e.g. corpus NLL per token)."""
    a, b = np.asarray(num, float), np.asarray(den, float)
    n = len(a)
    point = float(a.sum() / b.sum()) if n else float("nan")
    if n == 0:
        return Estimate(point, 0, float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    stats = a[idx].sum(1) / b[idx].sum(1)
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return Estimate(point, n, float(lo), float(hi), "bootstrap")


def transform(est: Estimate, fn: Callable[[float], float]) -> Estimate:
    """Apply a monotone increasing map (e.g. exp for NLL → perplexity) to an estimate and its CI."""
    return Estimate(fn(est.value), est.n, fn(est.ci_low), fn(est.ci_high), est.method, est.confidence)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 5000, seed: int = 0
) -> tuple[Estimate, float]:
    """Mean difference b − a over the same cases: a bootstrap CI expanded for small samples and a two-sided
    sign-flip randomization p. A bootstrap of six differences all near +0.04 had said p = 0.0002, which no test of
    six pairs can justify (the smallest honest p of six pairs is 2/64): resampling centred differences is too
    narrow when n is small, and so is the plain percentile interval."""
    d = np.asarray(b, float) - np.asarray(a, float)
    est = _expanded(bootstrap(d, np.mean, n_boot=n_boot, seed=seed))
    if len(d) == 0:
        return est, float("nan")
    return est, sign_flip(d, n_boot, seed + 1)


MAX_DRAWS = 100_000  # sign patterns drawn at most, when few of the first reach the observed difference
HITS = 10  # ... that is, fewer than this many


def sign_flip(d: np.ndarray, n_draws: int = 5000, seed: int = 1) -> float:
    """Two-sided p of "the paired differences are symmetric about 0" (Fisher's randomization test): every sign
    pattern when there are at most 2^12, else ``n_draws`` random ones with the (k + 1)/(N + 1) correction, and
    more (up to :data:`MAX_DRAWS`) while fewer than :data:`HITS` reach the observed difference. 5,000 draws alone
    cannot go below 1/5001, and BH over the ~150 metrics of a diff then puts even a huge change at p >= 0.03."""
    d = np.asarray(d, float)
    observed = abs(d.mean()) - 1e-12
    if len(d) <= 12:
        signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
        return float((np.abs((signs * d).mean(1)) >= observed).mean())
    rng = np.random.default_rng(seed)
    hits, drawn, batch = 0, 0, n_draws
    while drawn == 0 or (hits < HITS and drawn < MAX_DRAWS):
        signs = rng.choice([-1.0, 1.0], size=(batch, len(d)))
        hits += int((np.abs((signs * d).mean(1)) >= observed).sum())
        drawn += batch
        batch = max(1000, min(MAX_DRAWS - drawn, 4_000_000 // len(d)))
    return float((hits + 1) / (drawn + 1))


def _expanded(est: Estimate) -> Estimate:
    """Hesterberg's expanded percentile interval (The American Statistician, 2015): widen a bootstrap interval
    of a mean by sqrt(n / (n − 1)) · t(n − 1) / z, the small-sample correction the percentile method lacks."""
    n = est.n
    if n < 2 or est.ci_low != est.ci_low:
        return est
    z = _z(est.confidence)
    scale = math.sqrt(n / (n - 1)) * t_quantile(0.5 + est.confidence / 2, n - 1) / z
    return Estimate(est.value, n, est.value - (est.value - est.ci_low) * scale,
                    est.value + (est.ci_high - est.value) * scale, est.method, est.confidence)


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile: exact for 1 and 2 degrees of freedom, else the Cornish–Fisher expansion
    (Abramowitz & Stegun 26.7.5; within 0.004 of the table from 3 degrees of freedom at p = 0.975)."""
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    from statistics import NormalDist

    z = NormalDist().inv_cdf(p)
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4


def paired_proportions(a: Sequence[bool], b: Sequence[bool], confidence: float = 0.95) -> tuple[Estimate, float]:
    """Share of True in ``b`` − in ``a`` over the same cases: Newcombe's hybrid score interval for paired data
    (1998, method 10) and the exact McNemar p. A bootstrap of a few paired 0/1 outcomes
    collapses: 0 of 8 fixed against 1 of 8 gives [-0.375, 0], which no test of 8 cases can justify; this gives
    [-0.47, 0.22]."""
    n = len(a)
    if n == 0:
        return Estimate(float("nan"), 0, float("nan"), float("nan"), "newcombe paired", confidence), float("nan")
    both = sum(1 for x, y in zip(a, b) if x and y)
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    neither = n - both - only_a - only_b
    pa, pb = (both + only_a) / n, (both + only_b) / n
    (la, ua), (lb, ub) = wilson(both + only_a, n, confidence), wilson(both + only_b, n, confidence)
    den = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(den) if den else 0.0
    lower = math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
    upper = math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
    d = pb - pa
    est = Estimate(d, n, max(-1.0, d - lower), min(1.0, d + upper), "newcombe paired", confidence)
    return est, _mcnemar(only_a, only_b)


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> float:
    """Exact McNemar test (two-sided binomial on the discordant pairs)."""
    only_a = sum(1 for x, y in zip(a_correct, b_correct) if x and not y)
    only_b = sum(1 for x, y in zip(a_correct, b_correct) if y and not x)
    return _mcnemar(only_a, only_b)


def _mcnemar(only_a: int, only_b: int) -> float:
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def mcnemar_min_p(a: Sequence[bool], b: Sequence[bool]) -> float:
    """The smallest p the exact McNemar test can give on these pairs, whatever their direction: 2 × 0.5^d on d
    discordant pairs (1 without any). A test that cannot reach the level is not a test at that level (Tarone 1990)."""
    return min(1.0, 2 * 0.5 ** sum(1 for x, y in zip(a, b) if bool(x) != bool(y)))


def sign_flip_min_p(d: Sequence[float]) -> float:
    """The smallest p :func:`sign_flip` can give on these differences: 2 / 2^n on n non-zero ones (every pattern
    of the zeros ties), and no less than 1 / (``MAX_DRAWS`` + 1) when patterns are drawn; 1 when all are zero."""
    n = int(np.count_nonzero(np.asarray(d, float)))
    if n == 0:
        return 1.0
    floor = 0.0 if len(d) <= 12 else 1 / (MAX_DRAWS + 1)
    return min(1.0, max(2 / 2**n, floor))


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (false discovery rate), in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, pvalues[i] * m / rank)
        adjusted[i] = running
    return adjusted


def interval_at(est: Estimate, confidence: float) -> tuple[float, float]:
    """``est``'s two-sided interval at another confidence level.

    Exact for a Wilson proportion (recomputed from k = value·n and n); otherwise each side of the stored
    interval is rescaled by the ratio of normal quantiles (``z(confidence) / z(est.confidence)``), which keeps a
    skewed bootstrap interval skewed and is exact for a normal-theory interval.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    k = est.value * est.n
    if est.method == "wilson" and est.n > 0 and abs(k - round(k)) < 1e-6:
        return wilson(int(round(k)), est.n, confidence)
    scale = _z(confidence) / _z(est.confidence)
    return est.value - (est.value - est.ci_low) * scale, est.value + (est.ci_high - est.value) * scale


def one_sided_bound(est: Estimate, alpha: float, side: str) -> float:
    """The one-sided (1 − alpha) confidence bound of ``est``: ``side="lower"`` is L with P(θ ≥ L) ≥ 1 − alpha,
    i.e. the lower end of the two-sided (1 − 2·alpha) interval. ``value ≥ x`` is supported at level alpha
    when the lower bound is ≥ x."""
    low, high = interval_at(est, 1 - 2 * _alpha(alpha))
    return low if side == "lower" else high


def difference_interval(new: Estimate, old: Estimate, confidence: float = 0.95) -> tuple[float, float]:
    """Confidence interval of ``new.value − old.value`` for two independent estimates, from their own intervals
    by MOVER (Zou & Donner 2008; for two Wilson proportions this is Newcombe's hybrid score interval)."""
    l1, u1 = interval_at(new, confidence)
    l2, u2 = interval_at(old, confidence)
    d = new.value - old.value
    return (d - math.sqrt((new.value - l1) ** 2 + (u2 - old.value) ** 2),
            d + math.sqrt((u1 - new.value) ** 2 + (old.value - l2) ** 2))


def mantel_haenszel(strata: Sequence[tuple[int, int, int, int]]) -> float:
    """One-sided Cochran–Mantel–Haenszel p that group 1's event rate exceeds group 0's within strata; a stratum is
    ``(events1, n1, events0, n0)``. Comparing within strata keeps a difference between the strata (another label
    mix in each group, say) out of the test; a stratum missing a group carries nothing."""
    from statistics import NormalDist

    obs = expected = var = 0.0
    for a1, n1, a0, n0 in strata:
        n, m = n1 + n0, a1 + a0
        if n1 and n0 and n > 1:
            obs, expected = obs + a1, expected + n1 * m / n
            var += n1 * n0 * m * (n - m) / (n * n * (n - 1))
    if var <= 0:
        return 1.0
    return 1 - NormalDist().cdf((obs - expected - 0.5) / math.sqrt(var))  # with continuity correction


def standardized(strata: Sequence[tuple[int, int]], weights: Sequence[float], confidence: float = 0.95) -> Estimate:
    """A rate over strata ``(events, n)`` reweighted to another population's stratum shares ``weights`` (direct
    standardisation), with a normal-approximation interval."""
    total = sum(weights)
    w = [x / total for x in weights]
    rates = [a / n for a, n in strata]
    value = sum(wi * r for wi, r in zip(w, rates))
    se = math.sqrt(sum(wi * wi * r * (1 - r) / n for wi, r, (_, n) in zip(w, rates, strata)))
    z = _z(confidence)
    return Estimate(value, sum(n for _, n in strata), max(0.0, value - z * se), min(1.0, value + z * se),
                    "standardized", confidence)


def _alpha(alpha: float) -> float:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha!r}")
    return alpha

def _z(confidence: float) -> float:
    if abs(confidence - 0.95) < 1e-12:
        return Z95
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)
