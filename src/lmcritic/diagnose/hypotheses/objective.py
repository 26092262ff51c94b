"""Objective conflict: the model's likelihood prefers an answer regardless of the input, or it is
confidently wrong.

Tests: (1) content-free prior (Zhao et al. 2021, "Calibrate before use"): the probe is asked about
content-free inputs ("N/A", "[MASK]", empty); the label probabilities it gives there are the prior its
training objective built in. Dividing each case's probabilities by that prior (contextual calibration)
and seeing how many of the defect's failures it fixes — and how many passing cases it breaks (McNemar over
the probe) — tells whether the failures come from the prior rather than the input; (2) calibration: the
share of failures made with high confidence.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from lmcritic import stats
from lmcritic.diagnose.hypotheses.base import CauseVerdict, DefectContext, Evidence, Hypothesis, rate
from lmcritic.diagnose.rescore import Edit
from lmcritic.probes.base import Record

CONTENT_FREE = ("N/A", "[MASK]", "")
CONFIDENT = 0.8


class ObjectiveConflict(Hypothesis):
    name = "objective_conflict"
    title = "objective conflict"
    needs = frozenset()
    mitigation = ("calibrate the output (contextual calibration / temperature scaling), rebalance labels or "
                  "re-weight the loss; for generation, preference-tune against the fluent-but-wrong continuation")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        failing = ctx.failing(cap=10_000)
        evidence: list[Evidence] = []
        conf = [r.scores.get("confidence") for r in failing]
        confident = rate([c is not None and c >= CONFIDENT for c in conf]) if any(c is not None for c in conf) else None
        if confident is not None:
            evidence.append(Evidence("statistic", f"{confident} of failures are made with confidence >= {CONFIDENT}",
                                     confident, case_ids=tuple(r.case_id for r, c in zip(failing, conf)
                                                                if c is not None and c >= CONFIDENT)[:10]))
        preds = Counter(str(r.prediction) for r in failing if r.prediction is not None)
        if preds:
            top, k = preds.most_common(1)[0]
            evidence.append(Evidence("statistic", f"{k} of {len(failing)} failures predict {top!r}",
                                     rate([str(r.prediction) == top for r in failing])))
        labels = self._labels(ctx)
        if labels is None or not ctx.can_rescore():
            strength = confident.value if confident else 0.0
            return self.verdict(False, confident is not None and confident.ci_high < 0.3, strength * 0.5,
                                "no label probabilities to calibrate; " + (evidence[0].summary if evidence else ""),
                                evidence)
        prior, tests = self._prior(ctx, labels)
        if prior is None:
            return self.verdict(False, False, 0.0, "content-free prior could not be measured", evidence, tests)
        fixed, broken, mc_p, acc = self._calibrate(ctx, labels, prior)
        fix = rate([r.case_id in fixed for r in failing])
        passing = [r for r in ctx.records if r.passed]
        brk = rate([r.case_id in broken for r in passing])
        evidence.append(Evidence("test", f"content-free prior {dict(zip(labels, np.round(prior, 3).tolist()))}; "
                                 f"dividing it out fixes {fix} of the defect's failures and breaks {brk} of passing "
                                 f"cases; probe accuracy {acc[0]:.3f} -> {acc[1]:.3f} (McNemar p={mc_p:.2g})",
                                 fix, p_value=mc_p, case_ids=tuple(sorted(fixed))[:10],
                                 data={"prior": dict(zip(labels, prior.tolist())), "accuracy_before": acc[0],
                                       "accuracy_after": acc[1]}))
        strength = max(0.0, fix.value - brk.value)
        supported = fix.ci_low > 0.1 and acc[1] > acc[0] and mc_p < 0.05
        refuted = fix.ci_high < 0.1 or acc[1] < acc[0]
        summary = (f"the model's content-free prior favours {labels[int(np.argmax(prior))]!r} "
                   f"({prior.max():.2f}); calibrating it away fixes {fix} of failures")
        return self.verdict(supported, refuted and not supported, strength, summary, evidence, tests)

    def _labels(self, ctx: DefectContext) -> list[str] | None:
        """The label set to calibrate over: the probe's declared labels (their order), else the record's."""
        rec = ctx.failing(1)
        probs = rec[0].label_probs if rec else None
        if not probs:
            return None
        probe = ctx.rescorer.probes.get(ctx.defect.probe) if ctx.rescorer else None
        declared = probe.labels() if probe is not None else None
        return list(declared) if declared and set(declared) == set(probs) else list(probs)

    def _prior(self, ctx: DefectContext, labels: list[str]) -> tuple:
        base = ctx.failing(1)[0]
        outs = ctx.rescore([Edit(base, t, "content_free") for t in CONTENT_FREE], self.name)
        vecs = [v for v in (_probs(o.record, labels) for o in outs) if v is not None]
        if not vecs:
            return None, len(outs)
        prior = np.mean(vecs, axis=0)
        return prior / prior.sum(), len(outs)

    def _calibrate(self, ctx: DefectContext, labels: list[str], prior: np.ndarray) -> tuple:
        fixed, broken, before, after = set(), set(), [], []
        for r in ctx.records:
            p = _probs(r, labels)
            expected = r.target
            if p is None or expected not in labels or r.passed is None:
                continue
            q = p / np.maximum(prior, 1e-12)
            ok = labels[int(np.argmax(q))] == expected
            before.append(bool(r.passed))
            after.append(ok)
            if ok and not r.passed:
                fixed.add(r.case_id)
            if r.passed and not ok:
                broken.add(r.case_id)
        mc = stats.mcnemar(before, after)
        n = max(1, len(before))
        return fixed, broken, mc, (sum(before) / n, sum(after) / n)


def _probs(record: Record, labels: list[str]) -> np.ndarray | None:
    p = [(record.label_probs or {}).get(lab) for lab in labels]
    return None if any(x is None for x in p) else np.asarray(p, float)
