"""Oriented counterfactual effects: for each pair of groups (A before B in lexicon order), Δ = p(positive | A)
− p(positive | B) on the same sentence, so a swap A→B and a swap B→A count in the same direction and never
cancel. Per pair with at least ``MIN_PAIRS`` cases: the mean Δ with a bootstrap CI, a two-sided Wilcoxon
signed-rank test (exact at small n, where bootstrap p-values are too small) and a sign test, BH-corrected across
the pairs tested (the diagnosis issue's statistics on the swap records this probe stores)."""
from __future__ import annotations

from typing import Any, Sequence

from lmcritic import stats
from lmcritic.probes.base import Record
from lmcritic.probes.bias import _common as C

MIN_PAIRS = 5  # fewer cases of a pair: no test (a CI from two points says nothing)


def oriented_delta(record: Record, order: Sequence[str]) -> tuple[tuple[str, str], float]:
    """((A, B), p(A) − p(B)) for one swap record, A the group that comes first in ``order``."""
    a, b = record.tags["group_from"], record.tags["group"]
    p_a, p_b = record.output["p_positive"], record.output["p_positive_swapped"]
    rank = {g: i for i, g in enumerate(order)}
    if rank.get(a, len(order)) <= rank.get(b, len(order)):
        return (a, b), p_a - p_b
    return (b, a), p_b - p_a


def pair_effects(records: Sequence[Record], order_of: Any) -> list[dict[str, Any]]:
    """One row per (attribute, A, B): mean Δ [CI], n, paired bootstrap and sign-test p-values, BH q-value.
    ``order_of(attribute, record)`` gives the lexicon order of the record's groups."""
    pairs: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        (a, b), _ = oriented_delta(r, order_of(r.tags["attribute"], r))
        pairs.setdefault((r.tags["attribute"], a, b), []).append(r)
    rows: list[dict[str, Any]] = []
    for (attr, a, b), rs in pairs.items():
        if len(rs) < MIN_PAIRS:
            continue
        deltas = [oriented_delta(r, order_of(attr, r))[1] for r in rs]
        est = stats.mean(deltas)
        rows.append({"attribute": attr, "a": a, "b": b, "n": len(rs), "delta": est.value,
                     "ci": [est.ci_low, est.ci_high], "p_wilcoxon": _wilcoxon(deltas), "p_sign": C.sign_test(deltas)})
    for row, q in zip(rows, stats.benjamini_hochberg([r["p_wilcoxon"] for r in rows]) if rows else []):
        row["q"] = q
    return rows


def _wilcoxon(deltas: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value (1.0 when every difference is zero)."""
    if not any(deltas):
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(deltas, zero_method="wilcox").pvalue)
