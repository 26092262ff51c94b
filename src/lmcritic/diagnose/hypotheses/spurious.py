"""Spurious feature: the answer rests on tokens that should not matter.

Attributions come from the interpretability area's stored explanations (pseudo-probe
``interpret.explanations``) when they cover the defect's cases, else from occlusion (each word deleted in
turn, the drop in the probability of the right answer measured through the probe). A token "should not
matter" when it carries no sentiment, negation or intensity (VADER lexicon). The test: the share of
attribution mass on such tokens, whether one of them recurs as the top token across failures, and an
intervention — delete that token from every failing case holding it and re-score.
"""
from __future__ import annotations

import re
from collections import Counter

from lmcritic.diagnose import _text
from lmcritic.diagnose.hypotheses.base import CauseVerdict, DefectContext, Evidence, Hypothesis, rate
from lmcritic.diagnose.rescore import Edit

OCCLUDE_CASES = 10
MAX_WORDS = 30


class SpuriousFeature(Hypothesis):
    name = "spurious_feature"
    title = "spurious feature"
    needs = frozenset({"rescore"})
    mitigation = ("remove or randomise the shortcut token in training data (or mask it), augment with "
                  "examples where it co-occurs with every label; re-verify with attributions")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        failing = ctx.failing()
        attributions, tests = self._attributions(ctx, failing[:OCCLUDE_CASES])
        evidence: list[Evidence] = []
        if not attributions:
            return self.verdict(False, False, 0.0, "no attributions could be computed", evidence, tests)
        mass, tops = _spurious_mass(attributions)
        evidence.append(Evidence("statistic", f"{mass:.0%} of positive attribution mass on the failing cases lies on "
                                 "tokens that should not matter", data={"top_tokens": dict(tops)}))
        in_slice = [f[5:] for f, v in ctx.defect.predicates
                    if f.startswith("word:") and v == "yes" and not _text.should_matter(f[5:])]
        top = next(iter(in_slice), None) or next((t for t, _ in tops.most_common() if not _text.should_matter(t)),
                                                 None)
        count = tops.get(top, 0) if top else 0
        if top is None or (not in_slice and count < max(2, 0.2 * len(attributions))):
            return self.verdict(False, mass < 0.5, mass * 0.3, f"no recurring irrelevant top token "
                                f"({mass:.0%} of mass on irrelevant tokens)", evidence, tests)
        holding = [r for r in failing if top in _text.lower_words(r.text or "")]
        share = rate([r in holding for r in failing])
        edits = [Edit(r, _delete(r.text or "", top), f"delete:{top}", {"token": top}) for r in holding]
        outs = ctx.rescore(edits, self.name)
        fix = rate([o.fixed for o in outs])
        evidence.append(Evidence("test", f"{top!r} is the top token in {count} of {len(attributions)} attributed "
                                 f"failures and occurs in {share} of failures; deleting it fixes {fix}", fix,
                                 case_ids=tuple(o.edit.record.case_id for o in outs if o.fixed)[:10],
                                 data={"token": top}))
        strength = share.value * fix.value
        identity = any(top == t for t, _ in _text.identity_terms(top))
        if identity:
            strength *= 0.5  # a demographic shortcut is data bias: the more specific cause
            evidence.append(Evidence("statistic", f"{top!r} is an identity term: see data bias"))
        supported = fix.n > 0 and fix.ci_low > 0.15 and share.value >= 0.25
        refuted = fix.n >= 5 and fix.ci_high < 0.15
        return self.verdict(supported, refuted, strength, f"irrelevant token {top!r} drives failures: deleting it "
                            f"fixes {fix}", evidence, tests + len(outs))

    def _attributions(self, ctx: DefectContext, failing) -> tuple[list[list[tuple[str, float]]], int]:
        stored = _stored(ctx, failing)
        if stored:
            return stored, 0
        edits = []
        for r in failing:
            ws = _text.words(r.text or "")[:MAX_WORDS]
            for i, w in enumerate(ws):
                edits.append(Edit(r, _delete_at(r.text or "", i), f"occlude:{i}", {"token": w.lower()}))
        outs = ctx.rescore(edits, self.name)
        per_case: dict[str, list[tuple[str, float]]] = {}
        for o in outs:
            shift = o.p_true_shift
            if shift is not None:  # deleting a word that pushed toward the wrong answer raises p(true)
                per_case.setdefault(o.edit.record.case_id, []).append((o.edit.detail["token"], shift))
        return list(per_case.values()), len(outs)


def _stored(ctx: DefectContext, failing) -> list[list[tuple[str, float]]]:
    """Word attributions from the interpretability area's stored explanations of these cases, if any.

    Their sign depends on the explained target, so magnitudes are used: mass is mass, whichever way it pushes.
    """
    wanted = {r.case_id for r in failing}
    out = []
    for rec in ctx.explanations:
        if rec.tags.get("probe", ctx.defect.probe) != ctx.defect.probe or rec.tags.get("case") not in wanted:
            continue
        sides = (rec.output or {}).get("original") or {}
        for ex in sides.get("explanations") or ():
            words, scores = ex.get("words"), ex.get("word_scores")
            if isinstance(words, list) and isinstance(scores, list) and len(words) == len(scores) and words:
                out.append([(str(w).strip().lower(), abs(float(x))) for w, x in zip(words, scores)
                            if str(w).strip().isalnum() and x == x])
                break
    return out


def _spurious_mass(attributions) -> tuple[float, Counter]:
    total = irrelevant = 0.0
    tops: Counter = Counter()
    for pairs in attributions:
        pos = [(t, w) for t, w in pairs if w > 0]
        total += sum(w for _, w in pos)
        irrelevant += sum(w for t, w in pos if not _text.should_matter(t))
        if pos:
            tops[max(pos, key=lambda p: p[1])[0]] += 1
    return (irrelevant / total if total else 0.0), tops


def _delete(text: str, token: str) -> str:
    out = re.sub(rf"(?i)(?<![A-Za-z']){re.escape(token)}(?![A-Za-z'])", "", text)
    return re.sub(r"\s{2,}", " ", out).strip()


def _delete_at(text: str, index: int) -> str:
    matches = list(re.finditer(r"[A-Za-z][A-Za-z']*|\d+", text))
    m = matches[index]
    return re.sub(r"\s{2,}", " ", text[: m.start()] + text[m.end():]).strip()
