"""Fragility: surface noise the meaning does not depend on (typos) causes the failures.

Primary test (on failing cases whose text has typos, sampled among those): spell-correct them (noisy channel)
and re-score, and, on the same cases, apply a neutral edit instead (casing or punctuation) — failures near the
decision boundary flip under any edit, so the correction must beat the neutral edit, case by case (Newcombe's
paired CI, McNemar). On the user's own data, what correcting every input with typos would do is also estimated
(fixes among the failing, breaks among the passing: typos can hide a word the model misreads), so the report
says whether input normalisation would lower the failure rate at all; it does not change the verdict. Corpus
evidence (``--train``): the share of texts with typos in training vs in the evaluated data. When the probe itself
made the noise (robustness probes), re-running perturbations only repeats the probe: the perturbation flip rate is
reported, but it is not independent evidence.
"""
from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any, Callable

from lmcritic.diagnose import _text
from lmcritic.diagnose.features import input_text
from lmcritic.diagnose.hypotheses._rewrite import casing, punctuation, rewrite_test
from lmcritic.diagnose.hypotheses.base import (
    CauseVerdict,
    Culprit,
    DefectContext,
    Evidence,
    Hypothesis,
    _sample,
    rate,
)
from lmcritic.diagnose.rescore import Edit
from lmcritic.probes.base import Estimate, Record

PREFERRED = ("typo", "char", "punctuation", "contraction", "case", "whitespace")
PER_CASE = 3
THRESHOLD = 0.05
MIN_NET = 5  # failing and passing cases with typos re-scored before the net change is estimated
PREDICTION = "spell_correction"  # marks the net-change evidence, which ``normalize_input`` quotes


class Fragility(Hypothesis):
    name = "fragility"
    title = "fragility"
    needs = frozenset({"rescore"})
    mitigation = ("adversarial/perturbation training (typos, paraphrases), input normalisation (spell-"
                  "correction) before the model; re-verify with the robustness probes")

    def test(self, ctx: DefectContext) -> CauseVerdict:
        failing = ctx.failing()
        typo_share = rate([bool(_text.typos(input_text(r) or "")) for r in failing])
        evidence = [Evidence("statistic", f"typos occur in {typo_share} of failing cases", typo_share)]
        shift = self._corpus(ctx, evidence)
        with_typos = ctx.failing_where(_has_typos)
        effect, p, n1, min_p = self._repair(ctx, with_typos, evidence)
        net = _net(ctx, with_typos, evidence) if ctx.natural and effect is not None else None
        flips, n2 = self._perturb(ctx, failing, evidence)
        words = tuple(dict.fromkeys(w for r in failing for w in _text.typos(input_text(r) or "")))[:12]
        culprit = Culprit("typos", "typos", contrast="a neutral edit (casing/punctuation)", effect=effect,
                          effect_name="fix rate of spell-correction − of a neutral edit (failing cases with typos)",
                          direction="typos in the input flip the answer", terms=words)
        parts = [f"typos in {typo_share.value:.0%} of failures"]
        if effect is not None:
            parts.append(f"spell-correction beats a neutral edit by {effect}")
        if net is not None:
            parts.append(f"spell-correcting every input with typos would change their failure rate by {net}")
        if flips is not None:
            parts.append(f"meaning-preserving perturbations flip {flips} of cases")
        if shift:
            parts.append(shift)
        independent = ctx.natural and typo_share.value >= 0.25
        v = self.conclude(effect, p, threshold=THRESHOLD, independent=independent, interventional=True,
                          summary="; ".join(parts), evidence=evidence, tests=n1 + n2, culprit=culprit, min_p=min_p,
                          refuted=typo_share.value < 0.1 and (flips is None or flips.ci_high < 0.15) or None)
        return replace(v, corroboration=int(independent) + int(bool(shift) and self._shifted(ctx)))

    def _shifted(self, ctx: DefectContext) -> bool:
        s = ctx.profile.shifts.get(("typos", "yes")) if ctx.profile is not None else None
        return s is not None and s.rarer_in_training

    def _corpus(self, ctx: DefectContext, evidence: list) -> str:
        s = ctx.profile.shifts.get(("typos", "yes")) if ctx.profile is not None else None
        if s is None:
            return ""
        evidence.append(Evidence("statistic", f"texts with typos: {s.train.value:.1%} of training vs "
                                 f"{s.evaluated.value:.1%} of the evaluated data (Fisher p={s.p_value:.2g})",
                                 s.difference, s.p_value))
        return f"typos in {s.evaluated.value:.0%} of evaluated texts vs {s.train.value:.0%} in training"

    def _repair(self, ctx: DefectContext, failing, evidence) -> tuple:
        return rewrite_test(ctx, failing, lambda t: _text.spell_correct(t) if _text.typos(t) else None,
                            "spell_correct", self.name, lambda t: (
                                f"spell-correcting {len(t.fixed)} failing cases with typos fixes {rate(t.fixed)}; "
                                f"a neutral edit of the same cases fixes {rate(t.control_fixed)}"),
                            evidence, examples=3)

    def _perturb(self, ctx: DefectContext, failing, evidence) -> tuple:
        perturbers = _perturbers()
        rng = random.Random(ctx.seed)
        edits = []
        for r in [*failing, *ctx.controls()]:
            text = r.text or ""
            for name, fn in rng.sample(perturbers, min(PER_CASE, len(perturbers))):
                out = fn(text, rng)
                if out and out != text:
                    edits.append(Edit(r, out, f"perturb:{name}", {"perturbation": name}))
        outs = ctx.rescore(edits, self.name)
        if not outs:
            return None, 0
        by_case: dict[str, bool] = {}
        for o in outs:
            by_case[o.edit.record.case_id] = by_case.get(o.edit.record.case_id, False) or o.flipped
        flips = rate(list(by_case.values()))
        evidence.append(Evidence("statistic", f"a meaning-preserving perturbation flips the answer on {flips} of cases"
                                 + ("" if ctx.natural else " (the probe's own kind of edit: not independent)"),
                                 flips, case_ids=tuple(c for c, f in by_case.items() if f)[:10],
                                 data={"perturbations": sorted({n for n, _ in perturbers})}))
        return flips, len(outs)


def _net(ctx: DefectContext, failing: list[Record], evidence: list) -> Estimate | None:
    """What spell-correcting every input with typos would do to their failure rate (what ``normalize_input``
    does): it fixes failures the typos caused, and breaks answers the typos made right by accident (a praise word
    hidden in a negative review). The slice's failure rate on inputs with typos after − before, from the share of
    the failing sample fixed and of a passing sample broken, weighted by how many of each the slice holds (normal
    approximation, Agresti–Caffo adjusted shares); None under :data:`MIN_NET` cases on either side."""
    ids = set(ctx.defect.slice_case_ids)
    with_typos = [r for r in ctx.records if r.case_id in ids and r.passed is not None and _has_typos(r)]
    n_fail, n_pass = sum(r.passed is False for r in with_typos), sum(r.passed is True for r in with_typos)
    passing = _sample([r for r in with_typos if r.passed], ctx.max_cases, ctx.seed + 2)
    fixed = _corrected(ctx, failing, lambda o: o.fixed)
    broken = _corrected(ctx, passing, lambda o: o.passed is False)
    if min(len(fixed), len(broken)) < MIN_NET:
        return None
    est = _weighted_change(fixed, broken, n_fail, n_pass)
    evidence.append(Evidence("statistic", f"spell-correcting inputs with typos fixes {rate(fixed)} of the failing "
                             f"ones and breaks {rate(broken)} of the passing ones: the failure rate on the "
                             f"{n_fail + n_pass} inputs with typos would change by {est}", est,
                             data={"prediction": PREDICTION, "fixed": sum(fixed), "failing_scored": len(fixed),
                                   "broken": sum(broken), "passing_scored": len(broken), "failing": n_fail,
                                   "passing": n_pass}))
    return est


def _has_typos(r: Record) -> bool:
    return bool(_text.typos(input_text(r) or ""))


def _corrected(ctx: DefectContext, records: list[Record], changed: Callable[[Any], bool]) -> list[bool]:
    """Per record, whether its spell-corrected text changes the outcome (``changed``); a text the corrector leaves
    as it is changes nothing, and a correction the budget left unscored is left out."""
    edits = [Edit(r, new, "spell_correct") for r in records
             if (new := _text.spell_correct(input_text(r) or "")) != (input_text(r) or "")]
    scored = {o.edit.record.case_id: changed(o) for o in ctx.rescore(edits, Fragility.name, optional=True)}
    edited = {e.record.case_id for e in edits}
    return [scored[r.case_id] if r.case_id in edited else False for r in records
            if r.case_id in scored or r.case_id not in edited]


def _weighted_change(fixed: list[bool], broken: list[bool], n_fail: int, n_pass: int) -> Estimate:
    """(broken share × passing − fixed share × failing) / all, with a normal-approximation 95% interval."""
    n = n_fail + n_pass
    f, b = sum(fixed) / len(fixed), sum(broken) / len(broken)
    fa, ba = (sum(fixed) + 1) / (len(fixed) + 2), (sum(broken) + 1) / (len(broken) + 2)
    se = math.sqrt(n_fail ** 2 * fa * (1 - fa) / len(fixed) + n_pass ** 2 * ba * (1 - ba) / len(broken)) / n
    value = (b * n_pass - f * n_fail) / n
    return Estimate(value, n, max(-1.0, value - 1.96 * se), min(1.0, value + 1.96 * se), "normal (weighted)")


def _perturbers() -> list[tuple[str, Callable[[str, random.Random], str | None]]]:
    """The perturbation area's label-preserving perturbations when registered, else built-ins."""
    try:
        from lmcritic.perturb import PERTURBATIONS

        found = []
        for name in PERTURBATIONS.names():
            cls = PERTURBATIONS.get(name)
            if getattr(cls, "preserves_label", False) and any(p in name for p in PREFERRED):
                found.append((name, _wrap(cls())))
        if found:
            return found
    except Exception:  # noqa: BLE001 - a registry still being filled in must not stop a diagnosis
        pass
    return [("typo", _typo), ("casing", casing), ("punctuation", punctuation)]


def _wrap(perturbation) -> Callable[[str, random.Random], str | None]:
    def run(text: str, rng: random.Random) -> str | None:
        out = perturbation(text, rng)
        return out[0] if out else None

    return run


def _typo(text: str, rng: random.Random) -> str | None:
    """Swap two adjacent inner letters of one longer word (a realistic keyboard slip)."""
    ws = [w for w in _text.words(text) if len(w) >= 4 and w.isalpha()]
    if not ws:
        return None
    w = rng.choice(ws)
    i = rng.randrange(1, len(w) - 2)
    typo = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    return text.replace(w, typo, 1) if typo != w else None
