"""Objective conflict: the model prefers a label whatever the input says (a prior built in by its training).

Works on label probabilities from any head: label words of a prompted LM or a classifier's softmax. Test
(Zhao et al. 2021, "Calibrate before use"): the probe is asked about content-free inputs ("N/A", "[MASK]", ""),
the mean label distribution there is the model's prior; dividing every case's probabilities by it and
re-deciding fixes some of the defect's failures and breaks some passing cases; the effect is the net accuracy
gain on the defect's cases, paired per case (Newcombe's paired CI, McNemar's p), with the probe's accuracy before
and after alongside. Evidence alongside: the share of the defect's failures that predict the favoured label,
predicted vs gold label shares, the training corpus's label shares (``--train``), and how many failures are made
with confidence ≥ 0.8.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from lmcritic import stats
from lmcritic.diagnose.hypotheses.base import CauseVerdict, Culprit, DefectContext, Evidence, Hypothesis, rate
from lmcritic.diagnose.rescore import Edit
from lmcritic.probes.base import Estimate, Record

# Zhao et al. 2021. The calibrate mitigation reads the same inputs, so the diagnosis predicts what the fix does. One
# request each: a backend that refuses one (a classifier refuses "") must not sink the others.
CONTENT_FREE = ("N/A", "[MASK]", "")
CONFIDENT = 0.8
THRESHOLD = 0.05  # net accuracy gain


class ObjectiveConflict(Hypothesis):
    name = "objective_conflict"
    title = "objective conflict"
    needs = frozenset()
    mitigation = ("calibrate the output (contextual calibration / temperature scaling), rebalance labels or "
                  "re-weight the loss; for generation, preference-tune against the fluent-but-wrong continuation")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        failing = ctx.failing(cap=10_000)
        evidence = self._descriptive(ctx, failing)
        labels = self._labels(ctx)
        if labels is None or not ctx.can_rescore():
            return self.verdict(False, False, 0.0, "no label probabilities to calibrate (or no model)", evidence)
        prior, tests = self._prior(ctx, labels)
        if prior is None:
            return self.verdict(False, False, 0.0, "content-free prior could not be measured", evidence, tests)
        before, after, fixed, broken = self._calibrate(ctx, labels, prior)
        if len(before) < 10:
            return self.verdict(False, False, 0.0, "too few cases with label probabilities", evidence, tests)
        top = labels[int(np.argmax(prior))]
        fix = rate([r.case_id in fixed for r in failing])
        brk = rate([r.case_id in broken for r in ctx.records if r.passed])
        effect, p, min_p = _net_gain(ctx, before, after)
        acc = (float(np.mean(list(before.values()))), float(np.mean(list(after.values()))))
        asked = "" if tests == len(CONTENT_FREE) else f" (the backend answered {tests} of {len(CONTENT_FREE)} inputs)"
        evidence.append(Evidence("test", f"content-free prior {dict(zip(labels, np.round(prior, 3).tolist()))}"
                                 f"{asked}; "
                                 f"dividing it out fixes {fix} of the defect's failures and breaks {brk} of passing "
                                 f"cases; probe accuracy {acc[0]:.3f} -> {acc[1]:.3f} (McNemar p="
                                 f"{stats.mcnemar(list(before.values()), list(after.values())):.2g}); net accuracy "
                                 f"gain on the defect's cases {effect}", effect, p, tuple(sorted(fixed))[:10],
                                 {"prior": dict(zip(labels, prior.tolist())), "accuracy_before": acc[0],
                                  "accuracy_after": acc[1]}))
        culprit = Culprit("prior", top, label=top, contrast="a uniform prior", effect=effect,
                          direction=f"the model favours {top!r} ({prior.max():.2f}) on content-free input",
                          effect_name="accuracy gain of contextual calibration on the defect's cases (paired)")
        return self.conclude(effect, p, threshold=THRESHOLD, independent=ctx.natural, interventional=True,
                             summary=f"content-free prior favours {top!r} ({prior.max():.2f}); calibrating it away "
                             f"fixes {fix} of the failures and breaks {brk} of passing cases",
                             evidence=evidence, tests=tests, culprit=culprit, min_p=min_p)

    def _descriptive(self, ctx: DefectContext, failing) -> list[Evidence]:
        out = []
        conf = [r.scores.get("confidence") for r in failing]
        if any(c is not None for c in conf):
            est = rate([c is not None and c >= CONFIDENT for c in conf])
            out.append(Evidence("statistic", f"{est} of failures are made with confidence >= {CONFIDENT}", est))
        preds = Counter(str(r.prediction) for r in failing if r.prediction is not None)
        if preds:
            top, k = preds.most_common(1)[0]
            out.append(Evidence("statistic", f"{k} of {len(failing)} failures predict {top!r}",
                                rate([str(r.prediction) == top for r in failing])))
        if ctx.profile is not None and ctx.profile.labelled:
            shares = ctx.profile.label_shares()
            listed = ", ".join(f"{k} {v}" for k, v in shares.items())
            out.append(Evidence("statistic", "training label shares: " + listed,
                                data={k: v.value for k, v in shares.items()}))
        return out

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
        outs = [o for t in CONTENT_FREE  # "" is optional: a classifier refuses it, and that is no fault to note
                for o in ctx.rescore([Edit(base, t, "content_free")], self.name, optional=not t)]
        vecs = [v for v in (_probs(o.record, labels) for o in outs) if v is not None]
        if not vecs:
            return None, len(outs)
        prior = np.mean(vecs, axis=0)
        return prior / prior.sum(), len(outs)

    def _calibrate(self, ctx: DefectContext, labels: list[str], prior: np.ndarray) -> tuple:
        """Per case id: correct before and after dividing the prior out; the ids it fixes and breaks."""
        fixed, broken = set(), set()
        before: dict[str, bool] = {}
        after: dict[str, bool] = {}
        for r in ctx.records:
            p = _probs(r, labels)
            expected = r.target
            if p is None or expected not in labels or r.passed is None:
                continue
            ok = labels[int(np.argmax(p / np.maximum(prior, 1e-12)))] == expected
            before[r.case_id] = bool(r.passed)
            after[r.case_id] = ok
            if ok and not r.passed:
                fixed.add(r.case_id)
            if r.passed and not ok:
                broken.add(r.case_id)
        return before, after, fixed, broken


def _net_gain(ctx: DefectContext, before: dict[str, bool], after: dict[str, bool]) -> tuple[Estimate, float, float]:
    """The accuracy change on the defect's cases (its slice; the whole probe for an all-cases defect), paired
    per case: what calibrating fixes net of what it breaks among the same cases. (Fixes among the failures minus
    breaks among the passes would reward any reshuffle: fixing 20 of 41 failures and breaking 20 of 134 passes
    changes nothing.)"""
    ids = [c for c in (ctx.defect.slice_case_ids or tuple(before)) if c in before] or list(before)
    a, b = [before[c] for c in ids], [after[c] for c in ids]
    return (*stats.paired_proportions(a, b), stats.mcnemar_min_p(a, b))


def _probs(record: Record, labels: list[str]) -> np.ndarray | None:
    p = [(record.label_probs or {}).get(lab) for lab in labels]
    return None if any(x is None for x in p) else np.asarray(p, float)
