"""Findings over stored explanations: is each method more faithful than random, how much attribution sits on
spurious features, and do the methods agree. Each headline has n and a 95% CI; method p-values are BH-corrected."""
from __future__ import annotations

import math
from typing import Any, Sequence

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic.findings import finding_name, make_finding
from lmcritic.interpret.html import tokens_plot
from lmcritic.plots import Tokens, to_details
from lmcritic.probes.base import Finding, Record, Severity

SPURIOUS_LIMIT = 0.25  # share of attribution mass on identity terms, punctuation or triggers


def summarize(records: Sequence[Any], spurious_limit: float = SPURIOUS_LIMIT) -> list[Finding]:
    if not records:
        return []
    methods = sorted({k.split(".", 1)[1] for r in records for k in r.scores if k.startswith("comprehensiveness.")})
    out = _faithfulness(records, methods)
    out += [f for f in (_spurious(records, spurious_limit), _agreement(records)) if f is not None]
    return out


def _faithfulness(records: Sequence[Any], methods: list[str]) -> list[Finding]:
    rows, pvals = [], []
    for m in methods:
        have = [r for r in records if _ok(r.scores.get(f"comprehensiveness.{m}"))
                and _ok(r.scores.get(f"random_comprehensiveness.{m}"))]
        comp = [r.scores[f"comprehensiveness.{m}"] for r in have]
        rand = [r.scores[f"random_comprehensiveness.{m}"] for r in have]
        if not have:
            continue
        gain, p = stats.paired_bootstrap(rand, comp)
        rows.append((m, have, comp, gain))
        pvals.append(p)
    findings = []
    for (m, have, comp, gain), q in zip(rows, stats.benjamini_hochberg(pvals)):
        suff = [r.scores.get(f"sufficiency.{m}", math.nan) for r in have]
        worse = gain.ci_high <= 0
        findings.append(make_finding(
            probe="interpret.explanations", name=finding_name("faithfulness", m),
            failed=worse, severity=Severity.LOW if worse else Severity.INFO,
            summary=f"{m}: comprehensiveness AOPC {_avg(comp):.3f} vs random order {_avg(comp) - gain.value:.3f} "
                    f"(gain {gain}, BH q={q:.3g}); sufficiency AOPC {_avg(suff):.3f} over {len(have)} explained "
                    "failures",
            estimate=gain,
            evidence=tuple(r.case_id for r in sorted(have, key=lambda r: r.scores[f"comprehensiveness.{m}"])),
            details={"comprehensiveness": to_jsonable(stats.mean(comp)), "sufficiency": _avg(suff),
                     "random_comprehensiveness": _avg(comp) - gain.value, "q_value": q}))
    return findings


def _spurious(records: Sequence[Any], limit: float) -> Finding | None:
    key = next((k for r in records for k in r.scores if k.startswith("spurious_share.")), None)
    if key is None:
        return None
    have = [r for r in records if _ok(r.scores.get(key))]
    values = [r.scores[key] for r in have]
    est = stats.mean(values)
    worst = sorted(have, key=lambda r: -r.scores[key])
    over = est.value - limit
    heatmaps = [_plot(r, key.split(".", 1)[1]) for r in worst[:5]]
    return make_finding(
        probe="interpret.explanations", name="spurious_share",
        failed=est.ci_low > limit,
        severity=Severity.MEDIUM if est.ci_low > limit else (Severity.LOW if over > 0 else Severity.INFO),
        summary=f"{est.value:.1%} of {key.split('.', 1)[1]} attribution mass sits on identity terms, punctuation or "
                f"triggers (95% CI {est.ci_low:.1%}–{est.ci_high:.1%}, n={est.n}); limit {limit:.0%}",
        estimate=est, evidence=tuple(r.case_id for r in worst[:10]),
        details={"limit": limit, "plots": to_details(*heatmaps)})


def _plot(record: Record, method: str) -> Tokens | None:
    from lmcritic._serde import from_jsonable
    from lmcritic.interpret.types import Explanation

    for ex in record.output.get("original", {}).get("explanations", []):
        if ex.get("method") == method:
            return tokens_plot(from_jsonable(Explanation, ex), f"{record.case_id}: {method}")
    return None


def _agreement(records: Sequence[Any]) -> Finding | None:
    values = [r.scores["agreement_spearman"] for r in records if _ok(r.scores.get("agreement_spearman"))]
    if not values:
        return None
    est = stats.mean(values)
    return make_finding(probe="interpret.explanations", name="method_agreement", failed=False,
                        severity=Severity.INFO if est.value >= 0.3 else Severity.LOW,
                        summary=f"rank correlation between the two methods' word scores: {est}"
                           + ("; low agreement: read single explanations with care" if est.value < 0.3 else ""),
                        estimate=est, evidence=tuple(r.case_id for r in records
                                                     if _ok(r.scores.get("agreement_spearman"))
                                                     and r.scores["agreement_spearman"] < 0.3)[:10])


def _ok(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _avg(xs: Sequence[float]) -> float:
    xs = [x for x in xs if _ok(x)]
    return sum(xs) / len(xs) if xs else math.nan
