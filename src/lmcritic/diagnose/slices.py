"""Exact top-K slice search in the style of SliceLine (Sagadeeva & Boehm, SIGMOD 2021).

A slice is a conjunction of up to ``max_level`` predicates ``feature = value`` on different features.
Slices are enumerated level by level; a candidate at level L+1 is built only from level-L slices that
passed the size threshold, and it is pruned when SliceLine's upper bound on its score (from its parents'
sizes and error counts) cannot beat the current K-th best score. The score trades the slice's error rate
against its size: ``α·(ē_S/ē − 1) − (1−α)·(n/|S| − 1)``. Each reported slice gets a one-sided Fisher exact
test against its complement, Benjamini–Hochberg within its level (every slice of one predicate is one family,
every slice of two another, ...: a single feature is not drowned by thousands of conjunctions, and a
conjunction still pays for all its siblings), a risk ratio (Katz log CI) and a risk difference (Newcombe hybrid
Wilson CI). Significant slices are reported first, by score.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lmcritic import stats
from lmcritic.diagnose.features import FeatureTable


@dataclass(frozen=True)
class SliceStats:
    """One slice: its predicates, size, failures, score and the test against everything else."""

    predicates: tuple[tuple[str, str], ...]
    size: int
    errors: int
    error_rate: float
    rest_error_rate: float
    score: float
    risk_ratio: float
    rr_ci: tuple[float, float]
    risk_difference: float
    rd_ci: tuple[float, float]
    p_value: float
    q_value: float = 1.0

    @property
    def label(self) -> str:
        return " & ".join(f"{f}={v}" for f, v in self.predicates) or "all cases"

    @property
    def significant(self) -> bool:
        return self.q_value < 0.05 and self.risk_ratio > 1


@dataclass(frozen=True)
class SliceSearch:
    """Search settings: top ``k`` by score, at most ``max_level`` predicates, slices of ``min_size``+ cases."""

    k: int = 10
    max_level: int = 3
    min_size: int = 8
    alpha: float = 0.95

    def run(self, table: FeatureTable, errors: Sequence[bool] | np.ndarray) -> list[SliceStats]:
        """The top-k slices by SliceLine score (score > 0 only), with BH-adjusted q-values."""
        err = np.asarray(errors, dtype=bool)
        n, total_err = len(err), int(err.sum())
        if n == 0 or total_err == 0 or total_err == n:
            return []
        masks = _base_predicates(table, self.min_size)
        ctx = _Ctx(err, n, total_err / n, self.alpha, self.min_size)
        ctx.clusters = cluster_ids(table.clusters)
        evaluated: list[tuple[tuple, np.ndarray]] = []
        level = [((p,), m) for p, m in masks.items() if int((m & err).sum()) > 0]
        top: list[float] = []
        for depth in range(1, self.max_level + 1):
            evaluated += level
            top = sorted([ctx.score(m) for _, m in evaluated], reverse=True)[: self.k]
            if depth == self.max_level:
                break
            level = self._next_level(level, masks, ctx, top[-1] if len(top) >= self.k else 0.0)
        return _finish(evaluated, ctx, self.k)

    def _next_level(self, level, masks, ctx: "_Ctx", kth: float) -> list:
        parents = {preds: m for preds, m in level if m.sum() >= self.min_size}
        out: dict[tuple, np.ndarray] = {}
        for preds, mask in parents.items():
            used = {f for f, _ in preds}
            for pred, pmask in masks.items():
                if pred[0] in used or pred <= preds[-1]:
                    continue
                key = tuple(sorted((*preds, pred)))
                if key in out or not _all_parents_kept(key, parents):
                    continue
                child = mask & pmask
                size, errs = int(child.sum()), int((child & ctx.err).sum())
                if size < self.min_size or errs == 0:
                    continue
                if ctx.upper_bound(key, parents) <= kth:
                    continue  # SliceLine pruning: even the best child of these parents cannot enter the top k
                out[key] = child
        return list(out.items())


class _Ctx:
    def __init__(self, err: np.ndarray, n: int, mean_err: float, alpha: float, min_size: int) -> None:
        self.err, self.n, self.mean_err, self.alpha, self.min_size = err, n, mean_err, alpha, min_size
        self.clusters: np.ndarray | None = None

    def score_of(self, size: float, errors: float) -> float:
        if size <= 0:
            return -math.inf
        return self.alpha * ((errors / size) / self.mean_err - 1) - (1 - self.alpha) * (self.n / size - 1)

    def score(self, mask: np.ndarray) -> float:
        return self.score_of(int(mask.sum()), int((mask & self.err).sum()))

    def upper_bound(self, key: tuple, parents: dict) -> float:
        """Best score any slice under all of ``key``'s parents could reach (binary errors: max error 1)."""
        subs = [parents[s] for s in itertools.combinations(key, len(key) - 1)]
        size_ub = min(int(m.sum()) for m in subs)
        err_ub = min(int((m & self.err).sum()) for m in subs)
        points = {max(self.min_size, min(err_ub, size_ub)), size_ub}
        return max(self.score_of(s, min(err_ub, s)) for s in points if s >= 1)


def _base_predicates(table: FeatureTable, min_size: int) -> dict[tuple[str, str], np.ndarray]:
    out = {}
    for feature, values in table.columns.items():
        arr = np.asarray(values)
        for v in sorted(set(values)):
            mask = arr == v
            if min_size <= mask.sum() < len(arr):
                out[(feature, v)] = mask
    return out


def _all_parents_kept(key: tuple, parents: dict) -> bool:
    return all(sub in parents for sub in itertools.combinations(key, len(key) - 1))


def _finish(evaluated: list, ctx: _Ctx, k: int) -> list[SliceStats]:
    all_stats = [slice_stats(preds, mask, ctx.err, ctx.score(mask), ctx.clusters) for preds, mask in evaluated]
    q = [1.0] * len(all_stats)
    for level in {len(s.predicates) for s in all_stats}:
        idx = [i for i, s in enumerate(all_stats) if len(s.predicates) == level]
        for i, qi in zip(idx, stats.benjamini_hochberg([all_stats[i].p_value for i in idx])):
            q[i] = qi
    all_stats = [_with_q(s, qi) for s, qi in zip(all_stats, q)]
    ranked = sorted((s for s in all_stats if s.score > 0),
                    key=lambda s: (not s.significant, -s.score, s.p_value, s.label))
    return ranked[:k]


def _with_q(s: SliceStats, q: float) -> SliceStats:
    from dataclasses import replace

    return replace(s, q_value=float(q))


def cluster_ids(clusters: Sequence[str] | None) -> np.ndarray | None:
    """Integer ids of the cases' clusters (variants of one source sentence), or None when every case is its own."""
    if clusters is None or len(set(clusters)) == len(clusters):
        return None
    return np.unique(np.asarray(clusters), return_inverse=True)[1]


def _units(mask: np.ndarray, err: np.ndarray, clusters: np.ndarray | None) -> tuple[int, int]:
    """(failing units, units) inside ``mask``: cases, or clusters of cases (a cluster fails if any case fails)."""
    if clusters is None:
        return int((mask & err).sum()), int(mask.sum())
    return len(np.unique(clusters[mask & err])), len(np.unique(clusters[mask]))


def slice_stats(predicates: tuple, mask: np.ndarray, err: np.ndarray, score: float = float("nan"),
                clusters: np.ndarray | None = None) -> SliceStats:
    """Fisher exact test (one-sided, higher failure inside), risk ratio and risk difference with 95% CIs.

    With ``clusters`` (several cases per source sentence, as perturbation probes make), the tests count clusters,
    not cases: six failing variants of one sentence are one failure, not six independent ones."""
    a, n1 = _units(mask, err, clusters)
    c, n0 = _units(~mask, err, clusters)
    p = fisher_greater(a, n1 - a, c, n0 - c)
    rr, rr_ci = risk_ratio(a, n1, c, n0)
    rd, rd_ci = risk_difference(a, n1, c, n0)
    return SliceStats(tuple(predicates), int(mask.sum()), int((mask & err).sum()), a / n1 if n1 else 0.0,
                      c / n0 if n0 else 0.0, float(score), rr, rr_ci, rd, rd_ci, p)


def slice_min_p(mask: np.ndarray, err: np.ndarray, clusters: np.ndarray | None = None) -> float:
    """The smallest one-sided Fisher p :func:`slice_stats` could give at the slice's margins (every failing unit
    inside it): one case of a band can never go below the base failure rate."""
    return fisher_min_p(*_units(mask, err, clusters), *_units(~mask, err, clusters))


def fisher_min_p(a: int, n1: int, c: int, n0: int) -> float:
    """The smallest one-sided :func:`fisher_greater` p of a failures in n1 against c in n0 at these margins: the
    table with every failure it can hold in row 1."""
    top = min(a + c, n1)
    return fisher_greater(top, n1 - top, a + c - top, n0 - (a + c - top))


def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact p-value that row 1 has the higher failure odds in [[a, b], [c, d]]."""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[a, b], [c, d]], alternative="greater")[1])


def risk_ratio(a: int, n1: int, c: int, n0: int) -> tuple[float, tuple[float, float]]:
    """Risk ratio with the Katz log interval (0.5 added to every cell when one is empty)."""
    if n1 == 0 or n0 == 0:
        return float("nan"), (float("nan"), float("nan"))
    fa, fc = float(a), float(c)
    if a == 0 or c == 0 or a == n1 or c == n0:
        fa, fc, n1, n0 = fa + 0.5, fc + 0.5, n1 + 1, n0 + 1
    rr = (fa / n1) / (fc / n0)
    se = math.sqrt(max(0.0, 1 / fa - 1 / n1 + 1 / fc - 1 / n0))
    return rr, (rr * math.exp(-stats.Z95 * se), rr * math.exp(stats.Z95 * se))


def risk_difference(a: int, n1: int, c: int, n0: int) -> tuple[float, tuple[float, float]]:
    """Difference of proportions with Newcombe's hybrid score interval (from two Wilson intervals)."""
    if n1 == 0 or n0 == 0:
        return float("nan"), (float("nan"), float("nan"))
    p1, p0 = a / n1, c / n0
    l1, u1 = stats.wilson(a, n1)
    l0, u0 = stats.wilson(c, n0)
    d = p1 - p0
    return d, (d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2))
