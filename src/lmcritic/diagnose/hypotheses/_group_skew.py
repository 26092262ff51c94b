"""Training-corpus skew between demographic groups: P(label) in the rows naming one group against another's.

The data-bias hypothesis reads it three ways: as corroboration of a pair the probe found (does the corpus lean
the way the model does), as a proposer of pairs the probe never compared, and as the contrast group a natural
defect's identity terms are swapped into (a bias the data taught is between groups the data names).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from lmcritic import stats
from lmcritic.diagnose.hypotheses.base import DefectContext
from lmcritic.diagnose.slices import fisher_greater, risk_difference
from lmcritic.probes.base import Estimate

PAIRS = 3  # group pairs tested per attribute
MIN_ROWS = 10  # training rows a group needs before its label skew can propose a pair


@dataclass(frozen=True)
class CorpusPair:
    """A group pair the probe did not compare, proposed by the training corpus: ``low`` has the lower P(target)."""

    attribute: str
    low: str
    high: str
    skew: Estimate  # P(target | low) − P(target | high) in the training rows (Newcombe CI)
    p_value: float  # two-sided Fisher


def corpus_skew(ctx: DefectContext, attr: str, target: str, low: str, high: str) -> tuple | None:
    """(P(target | rows naming low) − P(target | rows naming high) with a Newcombe CI, two-sided Fisher p, counts),
    or None without a labelled corpus or rows for both groups."""
    if ctx.profile is None or not ctx.profile.labelled:
        return None
    rates = ctx.profile.group_rates(attr, target)
    if low not in rates or high not in rates:
        return None
    (ka, na), (kb, nb) = rates[low], rates[high]
    d, (lo, hi) = risk_difference(ka, na, kb, nb)
    p = min(1.0, 2 * min(fisher_greater(ka, na - ka, kb, nb - kb), fisher_greater(kb, nb - kb, ka, na - ka)))
    return Estimate(d, na + nb, lo, hi, "newcombe"), p, (ka, na), (kb, nb)


def corpus_contrast(ctx: DefectContext, attr: str, group: str, wrong: str | None) -> str | None:
    """The group of ``attr`` whose training rows (``MIN_ROWS`` or more) carry ``wrong`` least often against
    ``group``'s, among those whose difference is significant (two-sided Fisher, BH across the groups) and leans
    ``group``'s way; None without a labelled corpus or such a group. A bias the training data taught is a contrast
    between groups the data names: swapping a suspect's terms into a group the corpus never names measures
    nothing the data taught (a MiniLM model planted with white names negative and Black names positive moved
    -0.02 when Black names became another group's, +0.27 when they became white names)."""
    if ctx.profile is None or not ctx.profile.labelled or wrong is None:
        return None
    rates = {g: kn for g, kn in ctx.profile.group_rates(attr, wrong).items() if kn[1] >= MIN_ROWS}
    if group not in rates:
        return None
    found = [(g, skew) for g in sorted(rates) if g != group
             and (skew := corpus_skew(ctx, attr, wrong, group, g)) is not None]
    qs = stats.benjamini_hochberg([skew[1] for _, skew in found]) if found else []
    keep = [(skew[0].value, g) for (g, skew), q in zip(found, qs) if q < 0.05 and skew[0].value > 0]
    return max(keep)[1] if keep else None


def corpus_pairs(ctx: DefectContext, attr: str, target: str, tested: set[frozenset[str]]) -> list[CorpusPair]:
    """Pairs of ``attr``'s groups the probe did not compare (``tested``) whose training rows (``MIN_ROWS`` each)
    differ significantly in P(target), BH across the attribute's pairs; the most skewed first, at most ``PAIRS``."""
    if ctx.profile is None or not ctx.profile.labelled:
        return []
    rates = {g: kn for g, kn in ctx.profile.group_rates(attr, target).items() if kn[1] >= MIN_ROWS}
    found = []
    for a, b in itertools.combinations(sorted(rates), 2):
        if frozenset((a, b)) in tested:
            continue
        low, high = (a, b) if rates[a][0] * rates[b][1] <= rates[b][0] * rates[a][1] else (b, a)
        skew = corpus_skew(ctx, attr, target, low, high)
        if skew is not None:
            found.append(CorpusPair(attr, low, high, skew[0], skew[1]))
    qs = stats.benjamini_hochberg([c.p_value for c in found]) if found else []
    keep = [c for c, q in zip(found, qs) if q < 0.05 and c.skew.value < 0]
    return sorted(keep, key=lambda c: c.skew.value)[:PAIRS]
