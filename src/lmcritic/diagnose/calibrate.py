"""From test results to calibrated verdicts: one decision rule, one multiple-testing correction, one severity.

Every hypothesis reports a primary test (:meth:`Hypothesis.conclude`): a signed effect with its 95% CI, a
p-value, the smallest effect that matters (``threshold``), and whether the evidence is interventional and
independent of how the probe produced its cases. Here, for the whole diagnosis:

* the p-values of every hypothesis on every defect are Benjamini–Hochberg corrected together;
* **supported** needs q < 0.05, a CI entirely beyond ``threshold`` on the effect's side, and independent
  evidence — a cause that cannot be tested that way is **inconclusive**, never supported;
* **not supported** needs a CI inside ±``threshold``, an effect significantly opposite to the sign the cause
  predicts (``CauseVerdict.expect``), or an explicit refutation by the hypothesis;
* severity is the CI bound nearest zero — the effect is at least that large at 95% confidence — graded on the
  ``cause`` scale of :data:`lmcritic.findings.SEVERITY_SCALES`: high from 0.2, medium from 0.1, low below;
* confidence, the ranking key, grows with that bound: up to 0.95 with interventional evidence, 0.8 without. An
  inconclusive cause's confidence (0.2–0.4) grows with its point effect the predicted way shrunk by its
  precision (:func:`shrunk`): a one-case band failing 100% vs 18% elsewhere (Fisher p = 0.18) is a large point
  effect but a weak lead.
"""
from __future__ import annotations

from dataclasses import replace
from statistics import NormalDist
from typing import Any, Sequence

from lmcritic import stats
from lmcritic.diagnose.hypotheses.base import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, CauseVerdict
from lmcritic.findings import grade
from lmcritic.probes.base import Estimate, Severity

ALPHA = 0.05
SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1, "none": 0}


def inner_bound(effect: Estimate | None, expect: int = 0) -> float:
    """|effect| at least, at 95% confidence: the CI bound nearest zero (0 when the CI straddles zero). With
    ``expect`` (+1 or -1, the sign the cause predicts) a CI on the other side of zero counts 0 too: calibrating a
    prior that makes the defect significantly worse is evidence against the prior, not for it."""
    if effect is None or effect.ci_low != effect.ci_low or effect.ci_high != effect.ci_high:
        return 0.0
    if effect.ci_low > 0 and expect >= 0:
        return float(effect.ci_low)
    if effect.ci_high < 0 and expect <= 0:
        return float(-effect.ci_high)
    return 0.0


def severity(effect: Estimate | None) -> str:
    """A supported cause's severity: its inner CI bound on the ``cause`` scale of the one severity table."""
    graded = grade(inner_bound(effect), "cause")
    return Severity.LOW.value if graded is Severity.INFO else graded.value


def _capped(severity_: str, cap: str | None) -> str:
    """The lower of a severity and its cap (None: no cap)."""
    if cap is None:
        return severity_
    return min(severity_, cap, key=lambda s: SEVERITY_RANK.get(s, 0))


def provisional(v: CauseVerdict, refuted: bool | None = None, q: float | None = None) -> CauseVerdict:
    """Apply the decision rule with ``q`` (the raw p-value until :func:`finalize` supplies the BH one)."""
    p = v.p_value if q is None else q
    e = v.effect
    clears = e is not None and inner_bound(e, v.expect) > v.threshold
    supported = v.independent and clears and p is not None and p < ALPHA
    if supported:
        verdict = SUPPORTED
    elif refuted or (refuted is None and (_within(v) or _against(v, p))):
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    return replace(v, verdict=verdict, confidence=_confidence(v, verdict, p), q_value=q if q is not None else v.q_value,
                   severity=_capped(severity(e), v.max_severity) if verdict == SUPPORTED else "none")


def _confidence(v: CauseVerdict, verdict: str, p: float | None) -> float:
    strength = min(1.0, inner_bound(v.effect, v.expect) / 0.4) if v.effect is not None else 0.0
    point = min(1.0, max(0.0, _toward(v)) / 0.4)
    if verdict == SUPPORTED:
        return round(0.5 + (0.45 if v.interventional else 0.3) * strength, 4)
    if verdict == NOT_SUPPORTED:
        return round(0.2 * point, 4)
    return round(0.2 + 0.2 * min(1.0, shrunk(_toward(v), p) / TAU) * (1.0 if v.independent else 0.5), 4)


TAU = 0.2  # the prior spread of causal effects: a "high" effect on the cause severity scale


def shrunk(effect: float, p: float | None) -> float:
    """A point effect shrunk by its precision: the posterior mean under a N(0, TAU²) prior, with the standard
    error recovered from the effect and its p-value, se = effect / Φ⁻¹(1 − p) (Altman & Bland, BMJ 2011;
    one-sided, so a two-sided p is shrunk a little more). A test's precision is in its p-value: an exact test
    of one case says p = the base failure rate, whatever the point effect. 0 without a p or the wrong way."""
    if effect <= 0 or p is None or p != p:
        return 0.0
    z = NormalDist().inv_cdf(1.0 - min(0.5, max(p, 1e-12)))
    if z <= 0:
        return 0.0
    se = effect / z
    return effect * TAU ** 2 / (TAU ** 2 + se ** 2)


def finalize(verdicts: Sequence[Sequence[CauseVerdict]]) -> list[list[CauseVerdict]]:
    """BH across every distinct test of the diagnosis, then the decision rule again with the q-values. A test
    several defects share (the same cause, culprit, effect and p: e.g. one training-corpus test for every defect
    it is asked about) is one hypothesis, counted once. A discrete test too small to reach ``ALPHA`` whatever
    its data (its ``min_p``: McNemar on four discordant pairs cannot go below 0.125) is left out of the count
    (Tarone 1990; Gilbert 2005 for the false discovery rate): it can never be supported, and counting it would
    only raise every other q. Those keep the q of BH across every test."""
    flat = [(i, j) for i, vs in enumerate(verdicts) for j, v in enumerate(vs) if v.p_value is not None]
    keys = [_test_key(verdicts[i][j]) for i, j in flat]
    unique = list(dict.fromkeys(keys))
    p_of = {k: float(verdicts[i][j].p_value or 1.0) for k, (i, j) in zip(keys, flat)}
    q_of = dict(zip(unique, stats.benjamini_hochberg([p_of[k] for k in unique]))) if unique else {}
    untestable = {k for k, (i, j) in zip(keys, flat) if (verdicts[i][j].min_p or 0.0) >= ALPHA}
    testable = [k for k in unique if k not in untestable]
    q_of.update(zip(testable, stats.benjamini_hochberg([p_of[k] for k in testable])) if testable else {})
    qs = [q_of[k] for k in keys]
    out = [list(vs) for vs in verdicts]
    for (i, j), q in zip(flat, qs):
        v = out[i][j]
        # a hypothesis's own refutation stands; the rule's own are decided again with q
        refuted = v.verdict == NOT_SUPPORTED and not _within(v) and not _against(v, v.p_value)
        out[i][j] = provisional(v, True if refuted else None, float(q))
    return out


def _test_key(v: CauseVerdict) -> tuple:
    """What makes two verdicts the same test: cause, culprit, effect and p-value."""
    c, e = v.culprit, v.effect
    culprit = (c.kind, c.attribute, c.value, c.contrast, c.label) if c is not None else None
    effect = (e.value, e.ci_low, e.ci_high, e.n) if e is not None else None
    return v.cause, culprit, effect, v.p_value


def _within(v: CauseVerdict) -> bool:
    e = v.effect
    return e is not None and e.n > 0 and -v.threshold <= e.ci_low and e.ci_high <= v.threshold


def _against(v: CauseVerdict, p: float | None) -> bool:
    """The effect is significantly on the side opposite to the one the cause predicts (CI beyond zero, p < alpha).
    Both are asked for: a bootstrap CI of a few paired 0/1 outcomes collapses onto zero (0 of 8 fixed by the edit,
    1 by the control gives [-0.375, 0]) and must not refute anything on its own."""
    e = v.effect
    if e is None or not v.expect or p is None or p >= ALPHA or e.ci_low != e.ci_low:
        return False
    return e.ci_high < 0 if v.expect > 0 else e.ci_low > 0


def _toward(v: Any) -> float:
    """The point effect in the direction the cause predicts (its size when it predicts no sign); 0 without one. A
    ranked cause (graph.RankedCause) carries its effect on its culprit."""
    e = getattr(v, "effect", None) or (v.culprit.effect if getattr(v, "culprit", None) is not None else None)
    expect = getattr(v, "expect", 1)
    if e is None or e.value != e.value:
        return 0.0
    return float(e.value * expect) if expect else abs(float(e.value))


def sort_key(c: Any) -> tuple:
    """Supported first, then inconclusive, then not supported; within each, a cause another supported cause
    explains after the rest (the root first: a word learnt as a cue from mislabelled rows is label noise before it
    is a shortcut), then by severity, then how many independent lines of evidence agree, then confidence."""
    order = {SUPPORTED: 0, INCONCLUSIVE: 1, NOT_SUPPORTED: 2}
    return (order.get(c.verdict, 3), bool(getattr(c, "explained_by", "")), -SEVERITY_RANK.get(c.severity, 0),
            -_agreeing(c), -c.confidence, c.cause)


def explain(verdicts: Sequence[Sequence[CauseVerdict]]) -> list[list[CauseVerdict]]:
    """Mark each supported shortcut whose word's training labels this diagnosis found noisy (a supported label-noise
    cause on that word) as that cause's consequence. The model learns the word as a cue either way; relabelling
    its rows removes the cue too, removing the cue leaves the labels wrong. Not where the mislabelled rows are the
    minor part of the word's lean (:func:`_minor`): then the rows mostly lean for another reason, and both stand."""
    noisy = {str(w): c.culprit.value for vs in verdicts for c in vs if c.cause == "label_noise"
             and c.verdict == SUPPORTED and c.culprit is not None and not _minor(c.culprit.data)
             and (w := (c.culprit.data.get("phenomenon") or {}).get("word"))}
    return [[replace(c, explained_by=f"label_noise ({noisy[c.culprit.value]})")
             if c.cause == "spurious_feature" and c.verdict == SUPPORTED and c.culprit is not None
             and c.culprit.kind == "token" and c.culprit.value in noisy else c for c in vs] for vs in verdicts]


def _minor(data: dict[str, Any]) -> bool:
    """The mislabelled rows are the minor part of the word's label lean (the whole interval of their share below
    ``_content_check.MINOR``): relabelling them leaves most of the cue, so it is not only their consequence."""
    from lmcritic.diagnose.hypotheses._content_check import MINOR

    high = ((data.get("label_mix") or {}).get("explained") or {}).get("ci_high")
    return isinstance(high, (int, float)) and high < MINOR  # None: a NaN bound, as JSON writes it


def _agreeing(c: Any) -> int:
    """Lines of corroborating evidence count only behind a primary test that points the way the cause predicts
    once shrunk by its precision: a spell-correction that fixes fewer failures than a neutral edit (the demo's D1),
    or 3 of 5 against 0 (q = 0.79, a held-out clean model), is not corroborated by being on natural data, while a
    replicated group gap just short of the threshold (the demo's straight-vs-lesbian gap, q = 0.002) is."""
    n = int(getattr(c, "corroboration", 0))
    if c.verdict == SUPPORTED:
        return n
    q = c.q_value if c.q_value is not None else getattr(c, "p_value", None)
    return n if c.verdict == INCONCLUSIVE and shrunk(_toward(c), q) > 0 else 0


def rank(causes: Sequence[CauseVerdict]) -> tuple[CauseVerdict, ...]:
    return tuple(sorted(causes, key=sort_key))
