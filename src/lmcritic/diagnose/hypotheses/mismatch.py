"""Generalization mismatch: failures concentrate on inputs far from what the model knows.

Tests: (1) on all of the probe's cases, whether failure is more likely on inputs the model itself finds
surprising (top tertile of input perplexity; Mann–Whitney AUC of perplexity, failing vs passing), on
colloquial register, rare words, or another source/domain (Fisher exact tests, BH-corrected), and how many
of the defect's failures fall there; (2) an intervention: colloquial failing cases shifted back to the
formal register and re-scored.
"""
from __future__ import annotations

import numpy as np

from lmcritic import stats
from lmcritic.diagnose import _text
from lmcritic.diagnose.hypotheses.base import CauseVerdict, DefectContext, Evidence, Hypothesis, rate
from lmcritic.diagnose.rescore import Edit
from lmcritic.diagnose.slices import slice_stats

SHIFTS = (("perplexity", "high"), ("register", "colloquial"), ("rare_word_rate", "high"))


class GeneralizationMismatch(Hypothesis):
    name = "generalization_mismatch"
    title = "generalization mismatch"
    needs = frozenset()
    mitigation = ("add in-domain / in-register examples to training or fine-tune on the deployment "
                  "distribution; flag high-perplexity inputs at serving time")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        err = np.array([r.passed is False for r in ctx.records])
        defect_ids = set(ctx.defect.case_ids)
        in_defect = np.array([r.case_id in defect_ids for r in ctx.records])
        rows = []
        for feature, value in self._shifts(ctx):
            mask = np.asarray(ctx.table.columns[feature]) == value
            s = slice_stats(((feature, value),), mask, err)
            conc = float((mask & in_defect).sum() / max(1, in_defect.sum()))
            rows.append((s, conc))
        qs = stats.benjamini_hochberg([s.p_value for s, _ in rows]) if rows else []
        evidence = [Evidence("slice", f"{s.label}: failure {s.error_rate:.0%} vs {s.rest_error_rate:.0%} elsewhere, "
                             f"RR {s.risk_ratio:.2f} [{s.rr_ci[0]:.2f}, {s.rr_ci[1]:.2f}], holds {conc:.0%} of the "
                             f"defect's failures", p_value=q, data={"q_value": q, "p_value": s.p_value})
                    for (s, conc), q in zip(rows, qs)]
        auc = self._auc(ctx, err, evidence)
        sig = [(s, c) for (s, c), q in zip(rows, qs) if q < 0.05 and s.risk_ratio >= 1.5]
        corr = max((c * (1 - 1 / s.risk_ratio) for s, c in sig), default=0.0)
        fix, n = self._formalize(ctx, evidence)
        coll = rate([bool(_text.colloquial_markers(r.text or "")) for r in ctx.failing()])
        interv = coll.value * fix.value if fix is not None and fix.n else 0.0
        supported_corr = any(c >= 0.5 for _, c in sig)
        supported_int = fix is not None and fix.ci_low > 0.15 and coll.value >= 0.25
        refuted = not sig and (fix is None or fix.ci_high < 0.15) and (auc is None or auc < 0.6)
        summary = "; ".join([f"{s.label} fails {s.risk_ratio:.1f}x more, {c:.0%} of the defect" for s, c in sig][:2]
                            + ([f"shifting to formal register fixes {fix}"] if fix is not None else [])) \
            or "failures do not concentrate on unfamiliar inputs"
        if supported_int:
            return self.verdict(True, False, max(interv, corr), summary, evidence, n, interventional=True)
        return self.verdict(supported_corr, refuted, corr, summary, evidence, n, interventional=False)

    def _shifts(self, ctx: DefectContext) -> list[tuple[str, str]]:
        cols = ctx.table.columns
        out = [(f, v) for f, v in SHIFTS if f in cols and v in cols[f]]
        if "tag.source" in cols:
            out += [("tag.source", v) for v in sorted(set(cols["tag.source"]))]
        if "tag.domain" in cols:
            out += [("tag.domain", v) for v in sorted(set(cols["tag.domain"]))]
        return out

    def _auc(self, ctx: DefectContext, err: np.ndarray, evidence) -> float | None:
        ppl = ctx.table.numeric.get("perplexity")
        if not ppl or err.all() or not err.any():
            return None
        from scipy.stats import mannwhitneyu

        x = np.asarray(ppl, float)
        a, b = x[err & ~np.isnan(x)], x[~err & ~np.isnan(x)]
        if not len(a) or not len(b):
            return None
        u, p = mannwhitneyu(a, b, alternative="greater")
        auc = float(u / (len(a) * len(b)))
        evidence.append(Evidence("statistic", f"input perplexity: median {np.median(a):.1f} on failures vs "
                                 f"{np.median(b):.1f} on passes (AUC {auc:.2f}, Mann–Whitney p={p:.2g})",
                                 p_value=float(p), data={"auc": auc}))
        return auc

    def _formalize(self, ctx: DefectContext, evidence) -> tuple:
        edits = []
        for r in ctx.failing():
            text = r.text or ""
            if _text.colloquial_markers(text):
                formal = _text.formalize(text)
                if formal and formal != text:
                    edits.append(Edit(r, formal, "formal_register"))
        outs = ctx.rescore(edits, self.name) if edits and ctx.can_rescore() else []
        if not outs:
            return None, 0
        fix = rate([o.fixed for o in outs])
        evidence.append(Evidence("test", f"rewriting colloquial failures in formal register fixes {fix}", fix,
                                 case_ids=tuple(o.edit.record.case_id for o in outs if o.fixed)[:10]))
        return fix, len(outs)
