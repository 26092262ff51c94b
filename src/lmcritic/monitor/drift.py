"""Two-sample tests for drift between a window and its reference, and the effect sizes reported with them.

* rates: two-proportion test (Fisher's exact test when an expected cell is under 5, else Pearson's χ²);
* means: Welch's t-test from sufficient statistics (n, mean, variance);
* continuous distributions: two-sample Kolmogorov–Smirnov on (bounded, seeded) samples, PSI as the size;
* categories: χ² on the contingency table (rare labels pooled), PSI as the size;
* embeddings: unbiased MMD² with a Gaussian kernel (median-heuristic bandwidth) and a permutation test
  (Gretton et al. 2012), and the witness function that ranks which texts are most unlike the reference;
* levels: one-sided exact binomial test (rate above a threshold) or one-sided t-test (mean above it).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

PSI_EPS = 1e-4
PSI_BINS = 10
MIN_EXPECTED = 5


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value for equal rates ``k1/n1`` (reference) and ``k2/n2``."""
    from scipy import stats

    if n1 == 0 or n2 == 0:
        return 1.0
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
    if table.sum(0).min() == 0:
        return 1.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    if expected.min() < MIN_EXPECTED:
        return float(stats.fisher_exact(table)[1])
    return float(stats.chi2_contingency(table, correction=False)[1])


def welch(n1: int, m1: float, v1: float, n2: int, m2: float, v2: float) -> float:
    """Two-sided Welch p-value from (n, mean, sample variance) of the reference and the window."""
    from scipy import stats

    if n1 < 2 or n2 < 2:
        return 1.0
    if v1 == 0 and v2 == 0:
        return 1.0 if m1 == m2 else 0.0
    res = stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2, equal_var=False)
    return float(res.pvalue) if not math.isnan(res.pvalue) else 1.0


def ks(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """(KS statistic, p-value)."""
    from scipy import stats

    if len(reference) < 2 or len(current) < 2:
        return 0.0, 1.0
    res = stats.ks_2samp(np.asarray(reference, float), np.asarray(current, float))
    return float(res.statistic), float(res.pvalue)


def psi(reference: Sequence[float], current: Sequence[float], bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins (ties merged)."""
    ref, cur = np.asarray(reference, float), np.asarray(current, float)
    if len(ref) < 2 or len(cur) < 1:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    a = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    b = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    return psi_counts(a, b)


def psi_counts(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray) -> float:
    """PSI = Σ (q − p) ln(q / p) over aligned bins (``p``, ``q``: the shares, floored at 1e-4)."""
    p, q = np.asarray(reference, float), np.asarray(current, float)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    p = np.maximum(p / p.sum(), PSI_EPS)
    q = np.maximum(q / q.sum(), PSI_EPS)
    return float(((q - p) * np.log(q / p)).sum())


def categories(reference: Mapping[str, int], current: Mapping[str, int]) -> tuple[float, float]:
    """(PSI, χ² p-value) of two label distributions; labels too rare for χ² are pooled into one."""
    from scipy import stats

    labels = sorted(set(reference) | set(current))
    table = np.array([[reference.get(k, 0) for k in labels], [current.get(k, 0) for k in labels]], float)
    size = psi_counts(table[0], table[1])
    if table.sum(1).min() == 0:
        return size, 1.0
    expected = table.sum(0) * table.sum(1).min() / table.sum()
    rare = expected < MIN_EXPECTED
    if rare.any():
        table = np.column_stack([table[:, ~rare], table[:, rare].sum(1)]) if (~rare).any() else table[:, :0]
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2:
        return size, 1.0
    return size, float(stats.chi2_contingency(table, correction=False)[1])


def rate_above(k: int, n: int, threshold: float) -> float:
    """One-sided exact binomial p-value for H0: rate <= threshold."""
    from scipy import stats

    if n == 0:
        return 1.0
    return float(stats.binomtest(k, n, min(max(threshold, 0.0), 1.0), alternative="greater").pvalue)


def mean_above(n: int, m: float, v: float, threshold: float) -> float:
    """One-sided t p-value for H0: mean <= threshold."""
    from scipy import stats

    if n < 2:
        return 1.0
    if v == 0:
        return 0.0 if m > threshold else 1.0
    t = (m - threshold) / math.sqrt(v / n)
    return float(stats.t.sf(t, n - 1))


def mmd_test(x: np.ndarray, y: np.ndarray, n_perm: int = 2000, seed: int = 0) -> tuple[float, float, np.ndarray]:
    """(unbiased MMD², permutation p-value, witness value of each row of ``y``).

    The witness of a point is mean k(·, y) − mean k(·, x): high for texts unlike the reference ``x``.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return 0.0, 1.0, np.zeros(ny)
    z = np.vstack([x, y])
    sq = np.maximum((z * z).sum(1)[:, None] + (z * z).sum(1)[None, :] - 2 * z @ z.T, 0.0)
    bandwidth = np.median(sq[np.triu_indices(len(z), 1)]) or 1.0
    k = np.exp(-sq / bandwidth)
    labels = np.r_[np.zeros(nx), np.ones(ny)]
    observed = float(_mmd2(k, labels[None, :], nx, ny)[0])
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(labels) for _ in range(n_perm)])
    null = np.concatenate([_mmd2(k, perms[i : i + 100], nx, ny) for i in range(0, n_perm, 100)])
    p = (1 + int((null >= observed).sum())) / (1 + n_perm)
    witness = k[nx:, nx:].mean(1) - k[nx:, :nx].mean(1)
    return observed, float(p), witness


def _mmd2(k: np.ndarray, is_y: np.ndarray, nx: int, ny: int) -> np.ndarray:
    """Unbiased MMD² for each row of 0/1 labels ``is_y`` (vectorised over permutations)."""
    kd = k - np.diag(np.diag(k))
    ys, xs = is_y, 1.0 - is_y
    syy = ((ys @ kd) * ys).sum(1)
    sxx = ((xs @ kd) * xs).sum(1)
    sxy = ((xs @ k) * ys).sum(1)
    return sxx / (nx * (nx - 1)) + syy / (ny * (ny - 1)) - 2 * sxy / (nx * ny)


__all__ = ["categories", "ks", "mean_above", "mmd_test", "psi", "psi_counts", "rate_above", "two_proportions",
           "welch"]
