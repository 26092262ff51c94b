"""Data bias: the failure follows a demographic term the label should not depend on.

Tests: (1) counterfactual swaps — each failing case's identity terms swapped to another group
(``lmcritic.lexicon.swap`` when present) and re-scored: how many failures the swap alone fixes, and how
many passing cases of the slice it breaks; (2) with a training corpus, the term–label skew of the terms
involved (Fisher exact test, BH-corrected), and whether it leans toward the wrong answers the model gives.
"""
from __future__ import annotations

from collections import Counter

from lmcritic import stats
from lmcritic.diagnose import _text
from lmcritic.diagnose.corpus import label_name
from lmcritic.diagnose.hypotheses.base import CauseVerdict, DefectContext, Evidence, Hypothesis, rate
from lmcritic.diagnose.rescore import Edit


class DataBias(Hypothesis):
    name = "data_bias"
    title = "data bias"
    needs = frozenset()
    mitigation = ("counterfactual data augmentation (swap identity terms in training data), rebalance the "
                  "term–label skew, or add a fairness constraint; re-verify with the counterfactual probe")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        failing = ctx.failing()
        terms = {r.case_id: _text.identity_terms(r.text or "") for r in failing}
        with_terms = [r for r in failing if terms[r.case_id]]
        share = rate([bool(terms[r.case_id]) for r in failing])
        evidence = [Evidence("statistic", f"identity terms occur in {share} of the defect's failing cases",
                             share, case_ids=tuple(r.case_id for r in with_terms[:10]))]
        fix, tests = self._swap_test(ctx, with_terms, terms, evidence)
        skew = self._skew(ctx, with_terms, terms, evidence)
        strength = share.value * (fix.value if fix and fix.n else 0.0) + (0.2 * share.value if skew else 0.0)
        supported = share.value >= 0.25 and ((fix is not None and fix.ci_low > 0.1) or (skew and fix is None))
        refuted = share.value < 0.1 or (fix is not None and fix.n >= 5 and fix.ci_high < 0.15 and not skew)
        what = f"identity terms in {share.value:.0%} of failures"
        if fix is not None:
            what += f"; swapping them fixes {fix}"
        if skew:
            what += "; the terms lean toward the wrong label in the training data"
        return self.verdict(supported, refuted, strength, what, evidence, tests)

    def _swap_test(self, ctx: DefectContext, with_terms, terms, evidence) -> tuple:
        if not with_terms or not ctx.can_rescore():
            return None, 0
        edits = self._edits(ctx, with_terms, terms)
        controls = [r for r in ctx.controls() if _text.identity_terms(r.text or "")]
        control_terms = {r.case_id: _text.identity_terms(r.text or "") for r in controls}
        outs = ctx.rescore(edits + self._edits(ctx, controls, control_terms), self.name)
        fixed = {o.edit.record.case_id for o in outs if o.fixed}
        tried = {o.edit.record.case_id for o in outs if o.edit.record.passed is False}
        fix = rate([c in fixed for c in sorted(tried)])
        evidence.append(Evidence("test", f"counterfactual identity swap fixes {fix} of failing cases with terms",
                                 fix, case_ids=tuple(sorted(fixed))[:10],
                                 data={"examples": _examples(outs)}))
        ctl = [o for o in outs if o.edit.record.passed]
        if ctl:
            broke = rate([o.broken for o in ctl])
            evidence.append(Evidence("test", f"the same swap breaks {broke} of passing cases (controls)", broke))
        return (fix if tried else None), len(outs)

    def _edits(self, ctx: DefectContext, recs, terms) -> list[Edit]:
        out = []
        for r in recs:
            for attribute in sorted({a for _, a in terms[r.case_id]}):
                swapped = _text.swap_identity(r.text or "", attribute, ctx.seed)
                if swapped:
                    out.append(Edit(r, swapped, "identity_swap", {"attribute": attribute}))
        return out

    def _skew(self, ctx: DefectContext, with_terms, terms, evidence) -> bool:
        if ctx.train is None or not with_terms:
            return False
        counts = Counter(t for r in with_terms for t, _ in terms[r.case_id])
        wrong = Counter(str(r.prediction) for r in with_terms)
        wrong_label = wrong.most_common(1)[0][0] if wrong else None
        rows = [s for t, _ in counts.most_common(5) if (s := ctx.train.term_stats(t)) is not None and s.n_with]
        if not rows:
            return False
        qs = stats.benjamini_hochberg([s.p_value for s in rows])
        aligned = [s for s, q in zip(rows, qs) if q < 0.05 and label_name(s.leaning) == wrong_label]
        evidence.append(Evidence("terms", "term–label statistics in the training corpus (Fisher, BH)", data={
            "wrong_prediction": wrong_label,
            "terms": [{"term": s.term, "n_with": s.n_with, "label_counts": s.label_counts,
                       "base_rates": s.base_rates, "leaning": label_name(s.leaning), "odds_ratio": s.odds_ratio,
                       "p_value": s.p_value, "q_value": q} for s, q in zip(rows, qs)]}))
        return bool(aligned)


def _examples(outs, n: int = 3) -> list[dict]:
    return [{"case": o.edit.record.case_id, "edited": o.edit.text, "before": o.edit.record.prediction,
             "after": o.prediction} for o in outs if o.flipped][:n]
