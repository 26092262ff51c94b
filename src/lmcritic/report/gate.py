"""The regression gate behind ``lmcritic gate``: allowed worsening per metric, judged with corrected p-values.

A gated metric fails when it got worse by more than its tolerance AND the change is significant (BH-adjusted
over the gated metrics only, since those are the hypotheses the gate tests). Both conditions matter: a large
but noisy drop on 10 cases is not evidence, and a significant drop of 0.1 points is within what was allowed.
Missing evidence never passes: a gated metric whose probe failed, ran partly or is missing in the candidate
fails the gate, and so does ``--fail-on-new-findings`` when any probe of the baseline did not finish in it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from lmcritic import stats
from lmcritic._serde import to_jsonable
from lmcritic.errors import ConfigError
from lmcritic.report.compare import Comparison, FindingChange, MetricDelta, ProbeGap


@dataclass(frozen=True)
class Rule:
    metric: str  # PROBE:SCORE or SCORE
    tolerance: float
    relative: bool = False  # tolerance is a fraction of the baseline mean


@dataclass(frozen=True)
class GateCheck:
    rule: Rule
    delta: MetricDelta
    allowed: float  # absolute worsening allowed, in the metric's units
    regression: float  # worsening observed (negative: improved)
    p_adjusted: float
    failed: bool


@dataclass(frozen=True)
class GateResult:
    run: str
    baseline: str
    alpha: float
    checks: tuple[GateCheck, ...]
    new_findings: tuple[FindingChange, ...] = ()
    fail_on_new_findings: bool = False
    failed: bool = field(default=False)
    missing: tuple[str, ...] = ()  # "PROBE (METRIC): status in the candidate: reason" — each one fails the gate

    def text(self) -> str:
        lines = [f"gate: run {self.run} against baseline {self.baseline} (alpha {self.alpha}, BH over "
                 f"{len(self.checks)} gated metric(s))"]
        for c in self.checks:
            mark = "FAIL" if c.failed else "ok  "
            lines.append(f"  {mark} {c.delta.key}: {c.delta.mean_a:.4g} -> {c.delta.mean_b:.4g} (worse by "
                         f"{c.regression:+.4g}, allowed {c.allowed:.4g}; 95% CI of change [{c.delta.delta.ci_low:.4g}, "
                         f"{c.delta.delta.ci_high:.4g}], p_adj {c.p_adjusted:.3g}, {c.delta.test}, "
                         f"n_paired {c.delta.n_paired}" + (f", {c.delta.n_unpaired} unpaired" if c.delta.n_unpaired
                                                           else "") + ")")
        lines += [f"  FAIL {m}" for m in self.missing]
        for f in self.new_findings:
            mark = "FAIL" if self.fail_on_new_findings else "note"
            lines.append(f"  {mark} new failing finding {f.probe}:{f.name} ({f.severity_b})")
        lines.append("gate FAILED" if self.failed else "gate passed")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self)


def parse_rules(items: Sequence[str], lower: Sequence[str] = (),
                higher: Sequence[str] = ()) -> list[tuple[Rule, bool | None]]:
    """``METRIC=TOL`` strings (TOL absolute, or ``N%`` of the baseline) with optional declared directions."""
    out = []
    both = set(lower) & set(higher)
    if both:
        raise ConfigError(f"metric {sorted(both)[0]!r} declared both lower- and higher-is-better")
    for item in items:
        metric, sep, tol = item.partition("=")
        if not sep or not metric.strip():
            raise ConfigError(f"--max-regression {item!r} is not METRIC=TOL", "e.g. performance.sst2:pass_rate=0.02")
        relative = tol.strip().endswith("%")
        try:
            value = float(tol.strip().rstrip("%")) / (100 if relative else 1)
        except ValueError:
            raise ConfigError(f"--max-regression {item!r}: tolerance {tol!r} is not a number",
                              "use 0.02 (absolute) or 5% (relative to the baseline)") from None
        if not math.isfinite(value) or value < 0:  # NaN compares false with everything: it would pass any drop
            raise ConfigError(f"--max-regression {item!r}: tolerance must be a finite number >= 0")
        name = metric.strip()
        direction = False if name in lower else True if name in higher else None
        out.append((Rule(name, value, relative), direction))
    return out


def check_alpha(alpha: float) -> float:
    """A significance level must lie strictly between 0 and 1 (alpha 0 or -1 would pass any regression)."""
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ConfigError(f"--alpha must be between 0 and 1 (exclusive), got {alpha!r}", "e.g. --alpha 0.05")
    return float(alpha)


def evaluate_gate(comp: Comparison, rules: list[tuple[Rule, bool | None]], alpha: float = 0.05,
                  fail_on_new_findings: bool = False) -> GateResult:
    check_alpha(alpha)
    pairs, missing = [], []
    for rule, direction in rules:
        matched = comp.select(rule.metric)
        gaps = _gaps_for(comp.gaps, rule.metric)
        missing += [f"{g.probe} ({rule.metric}): {g.status_b} in the candidate" + (f": {g.reason_b}" if g.reason_b
                                                                                   else "") for g in gaps]
        if not matched and not gaps:
            known = ", ".join(sorted({m.key for m in comp.metrics})[:25]) or "none (no shared probes)"
            raise ConfigError(f"gate: no metric {rule.metric!r} in both runs", f"metrics: {known}")
        for d in matched:
            if direction is not None:
                d = replace(d, higher_is_better=direction)
            if d.higher_is_better is None:
                raise ConfigError(f"gate: cannot tell whether higher {d.metric!r} is better",
                                  f"add --lower-is-better {rule.metric} or --higher-is-better {rule.metric}")
            pairs.append((rule, d))
    adjusted = stats.benjamini_hochberg([d.p_value for _, d in pairs]) if pairs else []
    checks = tuple(_check(rule, d, p, alpha) for (rule, d), p in zip(pairs, adjusted))
    new = tuple(f for f in comp.findings if f.change == "appeared")
    if fail_on_new_findings:
        missing += [f"{g.probe}: {g.status_b} in the candidate" + (f": {g.reason_b}" if g.reason_b else "")
                    for g in comp.gaps if not any(m.startswith(f"{g.probe} ") for m in missing)]
    failed = any(c.failed for c in checks) or (fail_on_new_findings and bool(new)) or bool(missing)
    return GateResult(comp.run_b, comp.run_a, alpha, checks, new, fail_on_new_findings, failed, tuple(missing))


def _gaps_for(gaps: tuple[ProbeGap, ...], spec: str) -> list[ProbeGap]:
    """The unfinished probes a rule needs: ``PROBE:METRIC`` names one; ``METRIC`` every probe that had it."""
    probe, _, metric = spec.rpartition(":")
    return [g for g in gaps if (g.probe == probe if probe else True) and metric in g.metrics]


def _check(rule: Rule, d: MetricDelta, p_adj: float, alpha: float) -> GateCheck:
    allowed = rule.tolerance * abs(d.mean_a) if rule.relative else rule.tolerance
    regression = float(d.regression if d.regression is not None else math.nan)
    return GateCheck(rule, d, allowed, regression, p_adj, regression > allowed and p_adj < alpha)
