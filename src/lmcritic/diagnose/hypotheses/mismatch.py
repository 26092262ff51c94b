"""Generalization mismatch: failures concentrate on inputs unlike the training data (register, length, rare words).

The culprit is the shift in which most of the defect's failures fall (colloquial register, the longest length
tertile, rare words, high input perplexity, a source or domain tag), with its risk difference against the rest
of the probe (Newcombe CI, Fisher). Evidence independent of the probe:

* **corpus** (``--train``): the feature is significantly rarer in training than in the evaluated data;
* **intervention** on the model's own data: rewriting the colloquial failures (sampled among the colloquial ones,
  so the case budget is not spent on failures it cannot edit) in formal register and re-scoring, compared case by
  case with a neutral edit (Newcombe paired CI, McNemar). On ``robustness.register`` cases the
  rewrite only undoes the probe's edit, so there it is not independent.

When the corpus shows the shift on the user's own evaluated data (covariate shift: the inputs carry something
training lacks), the primary test is observational: the probability mass the model puts on wrong answers
(1 − p(gold), the failure itself where there are no probabilities) on the shifted inputs against the others — a
two-sample bootstrap CI of the difference of means and a one-sided p — more sensitive than the failure counts.
The rewrite then only corroborates: a word table cannot translate slang it does not know, so a weak rewrite is
no evidence against the shift. When it works too (p < 0.05, its CI beyond the threshold), the evidence counts as
interventional (the confidence it ranks by) and the verdict keeps the shift's effect and p: a corroboration that
holds must not weaken the primary test (taking the larger of the two p-values had let two dozen rewritten
failures decide: q 0.052 where the shift alone gave p 0.00025). Only when the shift's CI does not clear the
threshold and the rewrite's does is the rewrite's effect reported, with the larger p (both must hold). Either way
the verdict needs the shift's p below 0.05, so choosing adds no false positives. Without the corpus shift, the
rewrite is the test.

Longer inputs are also harder inputs: a length band is named with its effect, but without an intervention it
stays inconclusive.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from lmcritic import stats
from lmcritic.diagnose import _text
from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses._rewrite import rewrite_test
from lmcritic.diagnose.hypotheses.base import (
    CauseVerdict,
    Culprit,
    DefectContext,
    Evidence,
    Hypothesis,
    rate,
)
from lmcritic.diagnose.slices import cluster_ids, slice_min_p, slice_stats
from lmcritic.probes.base import Estimate, Record

SHIFTS = (("register", "colloquial"), ("length", "high"), ("rare_word_rate", "high"), ("perplexity", "high"))
KIND = {"register": "register", "length": "length", "rare_word_rate": "rare_words", "perplexity": "perplexity"}
THRESHOLD = 0.05


class GeneralizationMismatch(Hypothesis):
    name = "generalization_mismatch"
    title = "generalization mismatch"
    needs = frozenset()
    mitigation = ("add in-domain / in-register examples to training or fine-tune on the deployment "
                  "distribution; normalise inputs toward the training register; flag unfamiliar inputs at serving time")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        err = np.array([r.passed is False for r in ctx.records])
        in_defect = np.array([r.case_id in set(ctx.defect.case_ids) for r in ctx.records])
        rows, masks, clusters = [], {}, cluster_ids(ctx.table.clusters)
        for feature, value in self._shifts(ctx):
            mask = masks[feature, value] = np.asarray(ctx.table.columns[feature]) == value
            conc = float((mask & in_defect).sum() / max(1, in_defect.sum()))
            rows.append((slice_stats(((feature, value),), mask, err, clusters=clusters), conc))
        if not rows:
            return self.verdict(False, True, 0.0, "no distribution shift feature varies in this probe", [])
        qs = stats.benjamini_hochberg([s.p_value for s, _ in rows])
        evidence = [Evidence("slice", f"{s.label}: failure {s.error_rate:.0%} vs {s.rest_error_rate:.0%} elsewhere, RD "
                             f"{s.risk_difference:+.2f} [{s.rd_ci[0]:+.2f}, {s.rd_ci[1]:+.2f}], holds {c:.0%} of the "
                             "defect's failures", p_value=q, data={"q_value": q, "p_value": s.p_value})
                    for (s, c), q in zip(rows, qs)]
        s, conc = max(rows, key=lambda sc: (sc[1] * max(0.0, sc[0].risk_difference), -sc[0].p_value))
        if s.risk_difference <= 0 or conc == 0:
            # a band where the probe fails more but which holds none of this defect's failures explains none of it
            return self.verdict(False, True, 0.0, "failures do not concentrate on any distribution shift"
                                + ("" if s.risk_difference <= 0 else " that holds any of this defect's failures"),
                                evidence)
        feature, value = s.predicates[0]
        effect = Estimate(s.risk_difference, s.size, s.rd_ci[0], s.rd_ci[1], "newcombe")
        p, tests = s.p_value, 0
        min_p: float | None = slice_min_p(masks[feature, value], err, clusters)
        corpus = self._corpus(ctx, feature, value, evidence)
        shift = self._wrong_mass_shift(ctx, feature, value, evidence) if corpus and ctx.natural else None
        if shift is not None:
            (effect, p), min_p = shift, None
        interv, corroborated = None, False
        if feature == "register":
            interv, ip, tests, imin = self._formalize(ctx, evidence)
            corroborated = interv is not None and ctx.natural and ip < 0.05 and interv.ci_low > THRESHOLD
            effect, p, min_p = _primary((effect, p, min_p), (interv, ip, imin), shift is not None,
                                        corroborated, ctx.natural)
        independent = feature != "length" and (corpus or (interv is not None and ctx.natural))
        culprit = Culprit(KIND.get(feature, "source"), _band(ctx, feature, value), contrast="the rest of the probe",
                          direction=f"failures concentrate on {feature}={value} ({conc:.0%} of the defect)",
                          effect=effect, effect_name=("fix rate of a formal rewrite − of a neutral edit"
                                                      if effect is interv else
                                                      "mean probability on wrong answers in the band − elsewhere"
                                                      if shift is not None and effect is shift[0]
                                                      else "failure rate in the band − elsewhere"))
        summary = f"{s.label} fails {s.error_rate:.0%} vs {s.rest_error_rate:.0%} ({conc:.0%} of the defect)" + \
            (f"; rewriting in formal register fixes {interv} more than a neutral edit"
             if interv is not None else "") + \
            ("; rarer in training than in the evaluated data" if corpus else "")
        v = self.conclude(effect, p, threshold=THRESHOLD, independent=independent,
                          interventional=effect is interv or corroborated,
                          summary=summary, evidence=evidence, tests=tests, culprit=culprit, min_p=min_p)
        return replace(v, corroboration=int(corpus) + int(interv is not None and ctx.natural))

    def _shifts(self, ctx: DefectContext) -> list[tuple[str, str]]:
        cols = ctx.table.columns
        out = [(f, v) for f, v in SHIFTS if f in cols and v in cols[f]]
        for tag in ("tag.source", "tag.domain"):
            out += [(tag, v) for v in sorted(set(cols.get(tag, ())))]
        return out

    def _corpus(self, ctx: DefectContext, feature: str, value: str, evidence: list) -> bool:
        """Is the shift rarer in training than in the (natural) evaluated data?"""
        if ctx.profile is None:
            return False
        if feature == "length":
            a, b, p = ctx.profile.length_shift()
            evidence.append(Evidence("statistic", f"median length {a:.0f} words in training vs {b:.0f} in the "
                                     f"evaluated data (Mann–Whitney p={p:.2g})", p_value=p))
            return b > a and p < 0.05
        s = ctx.profile.shifts.get((feature, value))
        if s is None:
            return False
        evidence.append(Evidence("statistic", f"{feature}={value}: {s.train.value:.1%} of training texts vs "
                                 f"{s.evaluated.value:.1%} of the evaluated data, difference {s.difference} "
                                 f"(Fisher p={s.p_value:.2g})", s.difference, s.p_value))
        return s.rarer_in_training

    def _wrong_mass_shift(self, ctx: DefectContext, feature: str, value: str,
                          evidence: list) -> tuple[Estimate, float] | None:
        """Mean probability on wrong answers on the shifted inputs − on the others (bootstrap CI, one-sided p)."""
        mask = np.asarray(ctx.table.columns[feature]) == value
        loss = np.array([wrong_mass(r) for r in ctx.records], float)
        keep = ~np.isnan(loss)
        a, b = loss[mask & keep], loss[~mask & keep]
        if min(len(a), len(b)) < 5:
            return None
        effect, p = two_sample(a, b, ctx.seed)
        evidence.append(Evidence("test", f"{feature}={value}: the model puts {a.mean():.2f} of its probability on "
                                 f"wrong answers on average ({len(a)} inputs) vs {b.mean():.2f} on the others "
                                 f"({len(b)}): difference {effect}, p={p:.2g}", effect, p))
        return effect, p

    def _formalize(self, ctx: DefectContext, evidence: list) -> tuple:
        colloquial = ctx.failing_where(lambda r: bool(_text.colloquial_markers(input_text(r) or "")))
        return rewrite_test(ctx, colloquial, lambda t: _text.formalize(t) or None, "formal_register", self.name,
                            lambda t: (
                                f"rewriting {len(t.fixed)} colloquial failures in formal register fixes "
                                f"{rate(t.fixed)}; a neutral edit fixes {rate(t.control_fixed)}"
                                + ("" if ctx.natural else " (undoes the probe's own edit)")), evidence)


def _primary(current: tuple, rewrite: tuple, shifted: bool, corroborated: bool, natural: bool) -> tuple:
    """(effect, p, smallest p) the verdict rests on, given the rewrite's: the rewrite is the test without a corpus
    shift; with one it only corroborates, unless only its effect clears the threshold, when both must hold
    (intersection–union: the larger p)."""
    (effect, p, min_p), (interv, ip, imin) = current, rewrite
    if interv is not None and natural and not shifted:
        return interv, ip, imin
    if corroborated and shifted and effect.ci_low <= THRESHOLD:
        return interv, max(p, ip), imin
    return effect, p, min_p


def _band(ctx: DefectContext, feature: str, value: str) -> str:
    """A readable value: the register, or the numeric range of a tertile."""
    nums = ctx.table.numeric.get(feature)
    if not nums:
        return value
    x = np.asarray(nums, float)
    inside = x[np.asarray(ctx.table.columns[feature]) == value]
    inside = inside[~np.isnan(inside)]
    if not len(inside):
        return value
    unit = " words" if feature == "length" else ""
    return f"{value} ({inside.min():.3g}–{inside.max():.3g}{unit})"


def wrong_mass(r: Record) -> float:
    """1 − the probability of the gold answer; the failure itself without probabilities; NaN if unscored."""
    probs = r.label_probs or {}
    if r.target is not None and r.target in probs:
        return 1.0 - float(probs[r.target])
    if "p_true" in r.scores:
        return 1.0 - float(r.scores["p_true"])
    return float("nan") if r.passed is None else float(r.passed is False)


def two_sample(a: np.ndarray, b: np.ndarray, seed: int, n_boot: int = 4000) -> tuple[Estimate, float]:
    """mean(a) − mean(b): percentile bootstrap CI (each group resampled) and a one-sided p (difference <= 0)."""
    rng = np.random.default_rng(seed)
    boot = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1) - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    p = float((np.sum(boot <= 0) + 1) / (n_boot + 1))
    return Estimate(float(a.mean() - b.mean()), len(a) + len(b), float(lo), float(hi), "bootstrap"), p
